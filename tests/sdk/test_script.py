"""``@script``: a Python function as a stage, its source, its arguments, and the script it
makes, run by a real ``python3``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cyclone.sdk import ScriptStage, Stage, Workflow, emit, script
from cyclone.sdk.script import function_source


def run_script(stage: Stage, words: list[str], results: Path) -> subprocess.CompletedProcess:
    """The stage's command as its container would run it, after the engine put the
    argument values in place of ``{{ name }}``."""
    command = stage.to_dict()["spec"]["pod"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["python3", "-c"]
    assert command[3:] == [f"{{{{ {a.name} }}}}" for a in stage.arguments]
    return subprocess.run([sys.executable, "-c", command[2], *words], capture_output=True,
                          text=True, env={"CYCLONE_RESULTS_FILE": str(results)})


def test_the_script_is_the_function_source_without_its_decorator_and_dedented() -> None:
    def decorate(func):
        return func

    @decorate
    @script(image="python:3.12-slim")
    def build_linux(target: str = "linux"):
        """Build for one target."""
        emit(binary=f"app-{target}")

    assert isinstance(build_linux, ScriptStage)
    assert build_linux.name == "build-linux"
    assert build_linux.image == "python:3.12-slim"
    assert build_linux.__doc__ == "Build for one target."
    assert function_source(build_linux.func) == (
        'def build_linux(target: str = "linux"):\n'
        '    """Build for one target."""\n'
        '    emit(binary=f"app-{target}")\n')
    source = build_linux.to_dict()["spec"]["pod"]["spec"]["containers"][0]["command"][2]
    assert "@script" not in source and "@decorate" not in source
    assert source.rstrip().endswith("build_linux(_convert(_sys.argv[1], 'str'))")


def test_parameters_become_arguments_with_their_defaults_or_required() -> None:
    @script
    def deploy(env, replicas: int = 2, dry_run: bool = False, ratio: float = 0.5,
               note: str | None = None):
        pass

    assert deploy.to_dict()["spec"]["pod"]["inputs"]["arguments"] == [
        {"name": "env", "required": True}, {"name": "replicas", "value": "2"},
        {"name": "dry_run", "value": "false"}, {"name": "ratio", "value": "0.5"},
        {"name": "note"}]


def test_the_script_runs_the_function_with_converted_arguments_and_records_its_outputs(
        tmp_path: Path) -> None:
    @script
    def measure(name, count: int = 1, fast: bool = False, scale: float = 1.0):
        import json
        emit(report=json.dumps([name, count * 2, fast, scale * 2]), name=name)
        print("measured", name)

    results = tmp_path / "results"
    done = run_script(measure, ["disk", "21", "true", "1.25"], results)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "measured disk\n"
    assert results.read_text() == 'report:["disk", 42, true, 2.5]\nname:disk\n'


def test_a_function_that_exits_with_a_message_fails_the_stage_with_it(tmp_path: Path) -> None:
    @script
    def broken():
        raise SystemExit("tests failed: 3")

    done = run_script(broken, [], tmp_path / "results")
    assert done.returncode == 1 and done.stderr.strip() == "tests failed: 3"


def test_calling_a_script_stage_binds_arguments_and_joins_the_workflow() -> None:
    @script
    def package(version, suffix="tgz"):
        emit(file=f"app-{version}.{suffix}")

    with Workflow("release") as wf:
        version = Stage("version", image="alpine:3.20", script="echo version:1 > /x")
        first = package(version=version.outputs.version)
        second = package("package-zip", version=version.outputs.version, suffix="zip")
    assert [s.name for s in wf.stages] == ["version", "package", "package-zip"]
    assert first is not package and package.arguments[0].value is None
    assert second.to_dict()["spec"]["pod"]["inputs"]["arguments"] == [
        {"name": "version", "value": "${stages.version.outputs.version}", "required": True},
        {"name": "suffix", "value": "zip"}]
    assert [i.get("depends") for i in wf.to_dict()["spec"]["stages"]] == [
        None, ["version"], ["version"]]
    with pytest.raises(TypeError, match="stage 'package' has no argument 'versoin'"):
        package(versoin="1")


def test_emit_outside_a_stage_writes_the_results_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CYCLONE_RESULTS_FILE", str(tmp_path / "r"))
    emit(a=1, b="two")
    assert (tmp_path / "r").read_text() == "a:1\nb:two\n"


@pytest.mark.parametrize(("define", "message"), [
    ("def f(*args): pass", "parameter 'args' must be a plain positional one"),
    ("def f(*, key=1): pass", "parameter 'key' must be a plain positional one"),
])
def test_functions_whose_parameters_cannot_be_arguments_are_refused(tmp_path: Path, define,
                                                                    message) -> None:
    module = tmp_path / "m.py"
    module.write_text(define + "\n")
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    with pytest.raises(ValueError, match=message):
        script(namespace["f"])


def test_script_keeps_the_command_to_itself() -> None:
    with pytest.raises(TypeError, match="@script makes the stage's command itself"):
        script(command=["sh"])


def test_an_output_value_of_several_lines_is_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch) -> None:
    @script
    def notes():
        emit(summary="ok", notes="first\nsecond")

    done = run_script(notes, [], tmp_path / "results")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ValueError: output notes: a value must be one line")
    assert not (tmp_path / "results").exists()
    monkeypatch.setenv("CYCLONE_RESULTS_FILE", str(tmp_path / "local"))
    with pytest.raises(ValueError, match="output notes: a value must be one line"):
        emit(summary="ok", notes="first\nsecond")
    assert not (tmp_path / "local").exists()
