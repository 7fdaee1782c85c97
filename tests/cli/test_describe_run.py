"""`cyclone get wfr NAME`, `describe run NAME` and `watch NAME` against a live `cyclone up`:
the run's header, its stage tree in DAG order, outputs and Events, like `argo get`."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from support.live_up import LiveUp, cli, cli_ok, live_up, shell_stage_manifest

from cyclone.api import keys

PROJECT = "descr"


def stage(name: str, script: str) -> str:
    return shell_stage_manifest(PROJECT, name, script)


MANIFESTS = f"""\
kind: Project
metadata: {{name: {PROJECT}}}
{stage("fetch", "printf commit:abc123 > /cyclone/results/__result__")}\
{stage("lint", "echo lint")}\
{stage("build", "printf image:reg/app:1 > /cyclone/results/__result__")}\
{stage("publish", "echo publish")}\
{stage("boom", "echo failing; exit 3")}\
{stage("nap", "sleep 3")}\
---
kind: Workflow
metadata: {{name: chain, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages:
  - {{name: publish, depends: [build, lint]}}
  - {{name: lint, depends: [fetch]}}
  - {{name: build, depends: [fetch]}}
  - {{name: fetch}}
---
kind: Workflow
metadata: {{name: broken, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: boom}}]
---
kind: Workflow
metadata: {{name: slowish, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: nap}}]
"""


def wait_done(instance: LiveUp, run: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        phase = cli_ok(instance, "get", "wfr", run, "-p", PROJECT,
                       "-o", "jsonpath={.status.overall.phase}")
        if phase in ("Succeeded", "Failed", "Cancelled"):
            return phase
        assert time.monotonic() < deadline, f"{run} stayed {phase}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    with live_up(tmp_path_factory.mktemp("describe")) as up:
        cli_ok(up, "apply", "-f", "-", input=MANIFESTS)
        cli_ok(up, "run", "chain", "-p", PROJECT, "--name", "chain-1")
        cli_ok(up, "run", "broken", "-p", PROJECT, "--name", "broken-1")
        assert wait_done(up, "chain-1") == "Succeeded", cli_ok(up, "get", "wfr", "chain-1")
        assert wait_done(up, "broken-1") == "Failed"
        yield up


def record_event(instance: LiveUp, run: str, reason: str, message: str) -> None:
    """An Event about the run, as any Kubernetes component would record it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    namespace = keys.tenant_namespace(keys.DEFAULT_TENANT)
    instance.call(instance.cluster.create({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{run}.{reason.lower()}", "namespace": namespace},
        "involvedObject": {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
                           "name": run, "namespace": namespace},
        "reason": reason, "message": message, "type": "Warning",
        "source": {"component": "test"}, "firstTimestamp": now, "lastTimestamp": now,
        "count": 2}))


def without_ages(text: str) -> list[list[str]]:
    return [re.sub(r"\b\d+(m\d+s|[smhd])\b", "N", line).split() for line in text.splitlines()]


def section(lines: list[str], *header: str) -> list[list[str]]:
    """The table whose header line starts with `header`, split into words."""
    start = next(i for i, line in enumerate(lines) if line.split()[:len(header)] == [*header])
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_get_run_by_name_shows_header_stage_tree_outputs_and_events(instance) -> None:
    record_event(instance, "chain-1", "QuotaNotice", "the tenant is close to its quota")
    shown = cli_ok(instance, "get", "wfr", "chain-1", "-p", PROJECT)
    lines = shown.splitlines()
    header = dict(line.split(":", 1) for line in lines[:lines.index("")])
    assert header["Name"].strip() == "chain-1"
    assert header["Project"].strip() == PROJECT
    assert header["Workflow"].strip() == "chain"
    assert header["Phase"].strip() == "Succeeded"
    for field in ("Created", "Started", "Finished", "Duration"):
        assert header[field].strip(), field
    stages = section(lines, "STAGE")
    assert stages[0] == ["STAGE", "PHASE", "ATTEMPT", "STARTED", "DURATION", "MESSAGE"]
    assert [row[1] for row in stages[1:]] == ["fetch", "lint", "build", "publish"]
    assert all(row[2] == "Succeeded" for row in stages[1:])
    indent = {line.split()[1]: len(line) - len(line.lstrip())
              for line in lines if line.lstrip()[:1] == "✔"}
    assert indent["fetch"] < indent["lint"] == indent["build"] < indent["publish"]
    outputs = section(lines, "STAGE", "OUTPUT", "VALUE")
    assert ["fetch", "commit", "abc123"] in outputs
    assert ["build", "image", "reg/app:1"] in outputs
    events = section(lines, "TYPE")
    assert events[0] == ["TYPE", "REASON", "AGE", "OBJECT", "MESSAGE"]
    notice = next(row for row in events if row[1] == "QuotaNotice")
    assert notice[0] == "Warning" and "workflowrun/chain-1" in notice
    assert "the tenant is close to its quota" in " ".join(notice)
    assert "(x2)" in notice
    assert without_ages(cli_ok(instance, "describe", "run", "chain-1", "-p", PROJECT)) == \
        without_ages(shown)
    assert without_ages(cli_ok(instance, "describe", "wfr", "chain-1")) == without_ages(shown)


def test_a_failed_run_shows_its_failed_stage_and_message(instance) -> None:
    lines = cli_ok(instance, "describe", "run", "broken-1", "-p", PROJECT).splitlines()
    header = dict(line.split(":", 1) for line in lines[:lines.index("")])
    assert header["Phase"].strip() == "Failed"
    assert "boom" in header["Message"]
    boom = next(row for row in section(lines, "STAGE") if row[1:2] == ["boom"])
    assert boom[0] == "✖" and boom[2] == "Failed"
    assert "exit code 3" in " ".join(boom)
    assert lines[-1] == "Events:   <none>"


def test_run_events_route_lists_only_events_of_that_run(instance) -> None:
    import httpx

    record_event(instance, "broken-1", "OtherRunNotice", "not about chain-1")
    answer = httpx.get(f"{instance.url}/apis/v1alpha1/projects/{PROJECT}/workflows/chain"
                       "/workflowruns/chain-1/events",
                       headers={"Authorization": f"Bearer {instance.token}"})
    assert answer.status_code == 200, answer.text
    reasons = [event["reason"] for event in answer.json()["items"]]
    assert "OtherRunNotice" not in reasons
    missing = httpx.get(f"{instance.url}/apis/v1alpha1/projects/{PROJECT}/workflows/chain"
                        "/workflowruns/nope/events",
                        headers={"Authorization": f"Bearer {instance.token}"})
    assert missing.status_code == 404


def test_watch_reattaches_to_a_running_run_and_exits_by_its_outcome(instance) -> None:
    cli_ok(instance, "run", "slowish", "-p", PROJECT, "--name", "slowish-1")
    watched = cli(instance, "watch", "slowish-1", "--interval", "0.2")
    assert watched.returncode == 0, watched.stderr
    assert "nap: Running" in watched.stdout
    assert watched.stdout.rstrip().endswith("workflowrun/slowish-1 Succeeded")
    failed = instance.run_cli("watch", "broken-1", "-p", PROJECT)
    assert failed.returncode == 1
    assert len(failed.stderr.strip().splitlines()) == 1
    assert failed.stderr.startswith("error: workflowrun broken-1 Failed: stage boom failed")
    assert [line for line in failed.stdout.splitlines()
            if line.startswith("✖ boom") and line.endswith("(exit code 3)")]


def test_describe_names_what_it_shows_and_get_by_name_keeps_yaml(instance) -> None:
    refused = instance.run_cli("describe", "stage", "boom", "-p", PROJECT)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("error: describe shows workflowruns; for stage use "
                                      "`cyclone get stage NAME -o yaml`")
    as_yaml = cli_ok(instance, "get", "wfr", "chain-1", "-o", "yaml")
    assert as_yaml.startswith("apiVersion: cyclone.dev/v1alpha1")
