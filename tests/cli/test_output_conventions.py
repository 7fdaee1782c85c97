"""kubectl's output conventions, against a live `cyclone up`, through real pipes: nothing is
cut when stdout is not a terminal, `-o wide|name|jsonpath=…`, `--no-headers`, `--sort-by`,
the filters `--phase`, `--since`, `-l`, and runs listed by creation time, newest last."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from support.live_up import LiveUp, cli, cli_ok, live_up

PROJECT = "outconv-" + "p" * 40
MANIFESTS = f"""\
kind: Project
metadata: {{name: {PROJECT}}}
---
kind: Stage
metadata: {{name: quick, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo quick"]
---
kind: Stage
metadata: {{name: boom, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo failing on purpose; exit 3"]
---
kind: Stage
metadata: {{name: nap, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "sleep 20"]
---
kind: Workflow
metadata: {{name: zeta, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: quick}}]
---
kind: Workflow
metadata: {{name: alpha, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: boom}}, {{name: quick, depends: [boom]}}]
---
kind: Workflow
metadata: {{name: napping, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: nap}}]
"""
LONG_RUN = "alpha-" + "a-very-long-run-name-that-a-terminal-would-cut" + "-x" * 4


def labelled_run(name: str, workflow: str, labels: dict[str, str]) -> str:
    return json.dumps({
        "apiVersion": "cyclone.dev/v1alpha1", "kind": "WorkflowRun",
        "metadata": {"name": name, "labels": {"project.cyclone.dev/name": PROJECT, **labels}},
        "spec": {"workflowRef": {"name": workflow}}})


def piped(instance: LiveUp, *args: str) -> str:
    """`cyclone ARGS…` as a real process whose stdout is a pipe."""
    result = instance.run_cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_phase(instance: LiveUp, run: str, phases: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        phase = cli_ok(instance, "get", "wfr", run, "-p", PROJECT,
                       "-o", "jsonpath={.status.overall.phase}")
        if phase in phases:
            return phase
        assert time.monotonic() < deadline, f"{run} stayed {phase}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    """One `cyclone up` with three runs created a second apart, newest last:
    zeta-1 (Succeeded), LONG_RUN of alpha (Failed), zeta-2 (labelled team=web)."""
    with live_up(tmp_path_factory.mktemp("outconv")) as up:
        cli_ok(up, "apply", "-f", "-", input=MANIFESTS)
        cli_ok(up, "run", "zeta", "-p", PROJECT, "--name", "zeta-1")
        time.sleep(1.1)
        cli_ok(up, "run", "alpha", "-p", PROJECT, "--name", LONG_RUN)
        time.sleep(1.1)
        cli_ok(up, "apply", "-f", "-", "-w", "zeta",
               input=labelled_run("zeta-2", "zeta", {"team": "web"}))
        for run in ("zeta-1", LONG_RUN, "zeta-2"):
            wait_phase(up, run, {"Succeeded", "Failed"})
        yield up


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_piped_run_list_keeps_full_names_sorted_by_creation_not_by_workflow(instance) -> None:
    listed = piped(instance, "get", "wfr", "-p", PROJECT)
    assert "…" not in listed
    table = rows(listed)
    assert table[0] == ["NAME", "PROJECT", "WORKFLOW", "PHASE", "AGE", "DURATION", "MESSAGE"]
    assert [row[0] for row in table[1:]] == ["zeta-1", LONG_RUN, "zeta-2"]
    failed = table[2]
    assert failed[1:4] == [PROJECT, "alpha", "Failed"]
    assert "boom" in " ".join(failed[6:])
    assert [line for line in listed.splitlines() if LONG_RUN in line]


def test_piped_trigger_list_and_help_are_not_cut_to_80_columns(instance) -> None:
    trigger = "nightly-" + "t" * 50
    cli_ok(instance, "trigger", "create", trigger, "-p", PROJECT, "-w", "zeta",
           "--cron", "0 2 * * *", "--timezone", "UTC")
    listed = piped(instance, "trigger", "list", "-p", PROJECT)
    assert "…" not in listed
    assert rows(listed)[1][:4] == [trigger, PROJECT, "zeta", "Cron"]
    assert len(listed.splitlines()[1]) > 80
    helped = piped(instance, "get", "--help")
    assert "…" not in helped
    assert "integrations" in helped and "workflowtriggers" in helped


def test_wide_name_and_no_headers_outputs(instance) -> None:
    wide = rows(cli_ok(instance, "get", "wfr", "-p", PROJECT, "-o", "wide"))
    assert wide[0] == ["NAME", "PROJECT", "WORKFLOW", "PHASE", "AGE", "DURATION", "STARTED",
                       "FINISHED", "TRIGGER", "MESSAGE"]
    assert wide[1][6].endswith("Z") and wide[1][7].endswith("Z")
    names = cli_ok(instance, "get", "wfr", "-p", PROJECT, "-o", "name").splitlines()
    assert names == ["workflowrun/zeta-1", f"workflowrun/{LONG_RUN}", "workflowrun/zeta-2"]
    bare = rows(cli_ok(instance, "get", "wfr", "-p", PROJECT, "--no-headers"))
    assert [row[0] for row in bare] == ["zeta-1", LONG_RUN, "zeta-2"]


def test_jsonpath_output_like_kubectl(instance) -> None:
    names = cli_ok(instance, "get", "wfr", "-p", PROJECT,
                   "-o", "jsonpath={.items[*].metadata.name}")
    assert names == f"zeta-1 {LONG_RUN} zeta-2"
    table = cli_ok(instance, "get", "wfr", "-p", PROJECT, "-o",
                   'jsonpath={range .items[*]}{.metadata.name}{"\\t"}'
                   '{.status.overall.phase}{"\\n"}{end}')
    assert table.splitlines() == ["zeta-1\tSucceeded", f"{LONG_RUN}\tFailed",
                                  "zeta-2\tSucceeded"]
    filtered = cli_ok(instance, "get", "wfr", "-p", PROJECT,
                      "-o", 'jsonpath={.items[?(@.spec.workflowRef.name=="alpha")].metadata.name}')
    assert filtered == LONG_RUN
    one = cli_ok(instance, "get", "wf", "alpha", "-p", PROJECT,
                 "-o", "jsonpath={.spec.stages[1].depends[0]}")
    assert one == "boom"
    bad = cli(instance, "get", "wfr", "-p", PROJECT, "-o", "jsonpath={range .items[*]}")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == ["error: -o jsonpath: {range} without {end}"]


def test_sort_by_a_field_path(instance) -> None:
    by_name = cli_ok(instance, "get", "wfr", "-p", PROJECT, "--sort-by", ".metadata.name",
                     "-o", "name").splitlines()
    assert by_name == [f"workflowrun/{LONG_RUN}", "workflowrun/zeta-1", "workflowrun/zeta-2"]
    by_phase = cli_ok(instance, "get", "wfr", "-p", PROJECT, "--sort-by",
                      "{.status.overall.phase}", "-o", "json")
    assert next(r["metadata"]["name"] for r in json.loads(by_phase)) == LONG_RUN


def test_phase_since_and_label_filters(instance) -> None:
    def names(*flags: str) -> list[str]:
        return cli_ok(instance, "get", "wfr", "-p", PROJECT, "-o", "name", *flags).splitlines()

    assert names("--phase", "Failed") == [f"workflowrun/{LONG_RUN}"]
    assert names("--phase", "succeeded,failed") == [
        "workflowrun/zeta-1", f"workflowrun/{LONG_RUN}", "workflowrun/zeta-2"]
    assert names("-l", "team=web") == ["workflowrun/zeta-2"]
    assert names("-l", "team in (db,web)") == ["workflowrun/zeta-2"]
    assert names("-l", "!team", "--phase", "Succeeded") == ["workflowrun/zeta-1"]
    assert len(names("--since", "1h")) == 3
    time.sleep(1.1)
    assert names("--since", "1s") == []
    unknown = cli(instance, "get", "wfr", "-p", PROJECT, "--phase", "Exploded")
    assert unknown.returncode == 1
    assert len(unknown.stderr.strip().splitlines()) == 1
    assert unknown.stderr.startswith("error: unknown phase 'exploded' (one of: Pending,")
    since = cli(instance, "get", "wfr", "-p", PROJECT, "--since", "yesterday")
    assert since.returncode == 1
    assert since.stderr.strip() == ("error: --since 'yesterday' is not a duration such as "
                                    "30m, 1h or 2d")


def test_a_paused_run_lists_as_paused(instance) -> None:
    cli_ok(instance, "run", "napping", "-p", PROJECT, "--name", "nap-1")
    wait_phase(instance, "nap-1", {"Running"})
    cli_ok(instance, "pause", "nap-1", "-p", PROJECT)
    deadline = time.monotonic() + 30
    while True:
        listed = rows(cli_ok(instance, "get", "wfr", "-p", PROJECT, "-w", "napping"))
        if listed[1][3] == "Paused":
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.3)
    assert listed[1][0] == "nap-1"
    assert cli_ok(instance, "get", "wfr", "-p", PROJECT, "--phase", "Paused",
                  "-o", "name").splitlines() == ["workflowrun/nap-1"]
    cli_ok(instance, "stop", "nap-1", "-p", PROJECT)
    wait_phase(instance, "nap-1", {"Cancelled", "Failed"})


def test_a_missing_object_exits_1_with_one_line(instance) -> None:
    missing = instance.run_cli("get", "wfr", "no-such-run", "-p", PROJECT, "-w", "zeta")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.strip().splitlines() == ["error: workflowrun 'no-such-run' not found"]
    empty = instance.run_cli("get", "wfr", "-p", PROJECT, "-w", "zeta", "--since", "1s")
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr.strip() == "No workflowruns found."


def test_tenant_and_integration_lists_take_the_same_output_flags(instance) -> None:
    cli_ok(instance, "tenant", "create", "aardvark")
    tenants = cli_ok(instance, "tenant", "list", "--no-headers", "--sort-by", ".metadata.name")
    assert [row[0] for row in rows(tenants)][:2] == ["aardvark", "system"]
    assert "NAME" not in tenants
    names = cli_ok(instance, "tenant", "list", "-o", "jsonpath={.items[*].metadata.name}")
    assert "system" in names.split()
    integrations = cli(instance, "integration", "list", "--no-headers")
    assert integrations.returncode == 0 and "NAME" not in integrations.stdout
