"""Mistakes refused at apply, against a live `cyclone up`: unknown fields (in Cyclone kinds and
in the pod spec), stages a Workflow names that do not exist, output references to stages
that are not upstream; each named by field with the nearest valid name, in one line.
`apply --dry-run=server` and `lint -f` show the same verdict and store nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.live_up import LiveUp, cli, live_up
from typer.testing import CliRunner

from cyclone.cli.main import app

PROJECT = "applyval"
LABELS = f"labels: {{project.cyclone.dev/name: {PROJECT}}}"


def stage(name: str, command: str = "true", key: str = "command") -> str:
    return f"""\
kind: Stage
metadata: {{name: {name}, {LABELS}}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        {key}: [sh, -c, "{command}"]
"""


def workflow(name: str, stages: str) -> str:
    return f"""\
kind: Workflow
metadata: {{name: {name}, {LABELS}}}
spec:
  stages: {stages}
"""


def exists(instance: LiveUp, kind: str, name: str) -> bool:
    return cli(instance, "get", kind, name, "-p", PROJECT).returncode == 0


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    with live_up(tmp_path_factory.mktemp("applyval")) as up:
        project = f"kind: Project\nmetadata: {{name: {PROJECT}}}\n"
        created = cli(up, "apply", "-f", "-", input=project)
        assert created.returncode == 0, created.stderr
        yield up


def test_a_file_with_the_workflow_before_its_stages_applies(instance) -> None:
    text = "---\n".join([workflow("ordered", "[{name: first}, {name: second, depends: [first]}]"),
                         stage("first"), stage("second")])
    result = cli(instance, "apply", "-f", "-", input=text)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage/first created", "stage/second created", "workflow/ordered created"]


def test_a_misspelt_pod_field_is_refused_in_one_line_naming_path_and_fix(instance) -> None:
    result = instance.run_cli("apply", "-f", "-", input=stage("typo", key="comand"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: Stage 'typo': spec.pod.spec.containers[0].comand: "
        "unknown field 'comand' (did you mean 'command'?)")
    assert not exists(instance, "stg", "typo")


def test_a_workflow_naming_a_missing_stage_is_refused_with_the_nearest_stage(instance) -> None:
    cli(instance, "apply", "-f", "-", input=stage("build"))
    result = cli(instance, "apply", "-f", "-", input=workflow("misnamed", "[{name: biuld}]"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: Workflow 'misnamed': spec.stages[0].name: stage "
        f"'biuld' not found in project {PROJECT} (did you mean 'build'?)")
    assert not exists(instance, "wf", "misnamed")


def test_an_output_read_from_a_stage_that_is_not_upstream_is_refused(instance) -> None:
    text = "---\n".join([stage("maker", "echo v:1 >> /cyclone/results/__result__"),
                         stage("reader", "echo ${stages.maker.outputs.v}"),
                         workflow("unordered", "[{name: maker}, {name: reader}]")])
    result = cli(instance, "apply", "-f", "-", input=text)
    assert result.returncode == 1
    assert ("spec.stages[1]: stage 'reader' uses ${stages.maker.outputs.v}: stage 'maker' is "
            "not upstream of 'reader' (add it to depends)") in result.stderr
    fixed = workflow("unordered", "[{name: maker}, {name: reader, depends: [maker]}]")
    assert cli(instance, "apply", "-f", "-", input=fixed).returncode == 0


def test_server_dry_run_says_what_would_happen_and_stores_nothing(instance) -> None:
    text = "---\n".join([workflow("dry", "[{name: dry-stage}]"), stage("dry-stage")])
    result = cli(instance, "apply", "--dry-run=server", "-f", "-", input=text)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage/dry-stage created (server dry run)", "workflow would apply after its stages"]
    assert not exists(instance, "stg", "dry-stage")
    assert not exists(instance, "wf", "dry")


def test_server_dry_run_lists_every_refusal_by_file_document_and_field(instance,
                                                                      tmp_path: Path) -> None:
    manifest = tmp_path / "broken.yaml"
    manifest.write_text("---\n".join([stage("good"), stage("bad", key="comand"),
                                      workflow("lost", "[{name: nowhere}]")]))
    result = cli(instance, "apply", "--dry-run=server", "-f", str(manifest))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "stage/good created (server dry run)",
        f"{manifest}:doc 2 Stage/bad: spec.pod.spec.containers[0].comand: "
        "unknown field 'comand' (did you mean 'command'?)",
        f"{manifest}:doc 3 Workflow/lost: spec.stages[0].name: "
        f"stage 'nowhere' not found in project {PROJECT}",
    ]
    assert not exists(instance, "stg", "good")


def test_lint_reports_offline_and_server_problems_and_passes_a_good_file(instance,
                                                                        tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("---\n".join([
        stage("lint-a", "echo ${stages.lint-b.outputs.k}"), stage("lint-b"),
        workflow("linted", "[{name: lint-a}, {name: lint-b}, {name: ghost}]"),
        stage("lint-c", key="argz")]))
    result = cli(instance, "lint", "-f", str(bad))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{bad}:doc 3 Workflow/linted: spec.stages[0]: stage 'lint-a' uses "
        "${stages.lint-b.outputs.k}: stage 'lint-b' is not upstream of 'lint-a' "
        "(add it to depends)",
        f"{bad}:doc 4 Stage/lint-c: spec.pod.spec.containers[0].argz: "
        "unknown field 'argz' (did you mean 'args'?)",
        f"{bad}:doc 3 Workflow/linted: spec.stages[2].name: "
        f"stage 'ghost' not found in project {PROJECT}",
    ]
    assert "3 problems found" in result.stderr
    good = tmp_path / "good.yaml"
    good.write_text("---\n".join([stage("lint-x"), workflow("lint-ok", "[{name: lint-x}]")]))
    result = cli(instance, "lint", "-f", str(good))
    assert (result.returncode, result.stdout) == (0, f"{good}: 2 objects valid\n")
    assert not exists(instance, "stg", "lint-x")


def test_server_dry_run_of_a_change_leaves_the_stored_object_as_it_was(instance) -> None:
    assert cli(instance, "apply", "-f", "-", input=stage("kept", "echo old")).returncode == 0
    result = cli(instance, "apply", "--dry-run=server", "-f", "-", input=stage("kept", "echo new"))
    assert (result.returncode, result.stdout) == (0, "stage/kept configured (server dry run)\n")
    stored = cli(instance, "get", "stg", "kept", "-p", PROJECT, "-o", "json").stdout
    assert "echo old" in stored and "echo new" not in stored


def test_server_dry_run_of_a_run_checks_it_and_starts_nothing(instance) -> None:
    cli(instance, "apply", "-f", "-", input="---\n".join([
        stage("once"), workflow("runnable", "[{name: once}]")]))
    run = f"""\
kind: WorkflowRun
metadata: {{name: dry-run-1, {LABELS}}}
spec: {{workflowRef: {{name: runnable}}, startStages: [nope]}}
"""
    refused = cli(instance, "apply", "--dry-run=server", "-f", "-", input=run)
    assert refused.returncode == 1
    assert refused.stdout == (
        '-:doc 1 WorkflowRun/dry-run-1: spec.startStages[0]: unknown stage "nope"\n')
    fine = run.replace(", startStages: [nope]", "")
    result = cli(instance, "apply", "--dry-run=server", "-f", "-", input=fine)
    assert (result.returncode, result.stdout) == (
        0, "workflowrun/dry-run-1 created (server dry run)\n")
    assert not exists(instance, "wfr", "dry-run-1")


def test_lint_without_a_server_gives_the_offline_verdict_and_says_so(instance) -> None:
    result = CliRunner().invoke(app, ["lint", "-f", "-"], input=stage("far", key="comand"), env={
        "CYCLONE_CONFIG": str(instance.config), "CYCLONE_SERVER": "http://127.0.0.1:9",
        "CYCLONE_TENANT": None, "CYCLONE_TOKEN": None})
    assert result.exit_code == 1
    assert result.stdout == ("-:doc 1 Stage/far: spec.pod.spec.containers[0].comand: "
                             "unknown field 'comand' (did you mean 'command'?)\n")
    assert result.stderr.splitlines() == [
        "warning: offline checks only: cannot reach the Cyclone server at "
        "http://127.0.0.1:9: is `cyclone up` running?", "1 problem found"]


def test_lint_names_an_object_that_could_not_be_placed_in_a_project(instance) -> None:
    orphan = stage("orphan").replace(f", {LABELS}", "")
    result = cli(instance, "lint", "-f", "-", input=orphan)
    assert (result.returncode, result.stdout) == (
        1, "-:doc 1 Stage/orphan: Stage 'orphan': no project "
        "(pass --project or set the project.cyclone.dev/name label)\n")
