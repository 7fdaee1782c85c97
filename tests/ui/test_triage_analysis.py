"""Failure triage on hand-built runs: the failing stage, its exit, the log excerpt and what
changed since the last green run."""

from __future__ import annotations

import json
from typing import Any

from support.run_objects import DIAMOND, at

from cyclone.ui.triage import (
    STAGE_SPECS_ANNOTATION,
    Change,
    container_failure,
    first_failure,
    log_excerpt,
    triage,
)


def stage(start: float | None, end: float | None, phase: str = "Succeeded") -> dict:
    status: dict[str, Any] = {"phase": phase}
    if start is not None:
        status["startTime"] = at(start)
    if end is not None:
        status["lastTransitionTime"] = at(end)
    return {"status": status}


FAILURE = 'container "main" failed: Error (exit code 3)'


def run(stages: dict[str, dict], *, name: str = "red", phase: str = "Failed",
        parameters: dict[str, str] | None = None, variables: dict[str, str] | None = None,
        commit: str = "", annotations: dict[str, str] | None = None) -> dict:
    spec: dict[str, Any] = {}
    if parameters:
        spec["stages"] = [{"name": "build", "parameters": [
            {"name": k, "value": v} for k, v in parameters.items()]}]
    if variables:
        spec["globalVariables"] = [{"name": k, "value": v} for k, v in variables.items()]
    if commit:
        spec["resources"] = [{"name": "src", "parameters": [
            {"name": "SCM_REVISION", "value": commit}]}]
    return {"metadata": {"name": name, "creationTimestamp": at(0),
                         "annotations": annotations or {}},
            "spec": spec, "status": {"overall": {"phase": phase}, "stages": stages}}


def failed(start: float, end: float, message: str = FAILURE, reason: str = "PodFailed") -> dict:
    entry = stage(start, end, "Failed")
    entry["status"].update(reason=reason, message=message)
    return entry


def no_logs(stage_name: str) -> list[str]:
    return []


def test_the_first_failing_stage_is_the_first_to_finish_failed() -> None:
    red = run({"version": stage(0, 5), "build-linux": failed(5, 40),
               "build-mac": failed(5, 20),
               "report": failed(40, 40, "upstream failed", "UpstreamFailed")})
    assert first_failure(red, DIAMOND) == "build-mac"
    same_second = run({"build": failed(0, 9),
                       "a-notify": failed(9, 9, "upstream failed", "UpstreamFailed")})
    assert first_failure(same_second, None) == "build"


def test_a_trivial_failure_and_upstream_cancellations_are_not_the_cause() -> None:
    workflow = {"spec": {"stages": [{"name": "lint", "trivial": True}, {"name": "build"},
                                    {"name": "deploy", "depends": ["build"]}]}}
    red = run({"lint": failed(0, 2), "build": failed(0, 9),
               "deploy": failed(9, 9, "", "UpstreamFailed")})
    assert first_failure(red, workflow) == "build"
    only_trivial = run({"lint": failed(0, 2)})
    assert first_failure(only_trivial, workflow) == "lint"
    timed_out = run({"build": {"status": {"phase": "Cancelled", "reason": "Timeout",
                                          "startTime": at(0), "lastTransitionTime": at(60)}}})
    assert first_failure(timed_out, workflow) == "build"
    both = run({"scan": {"status": {"phase": "Cancelled", "reason": "Timeout",
                                    "lastTransitionTime": at(1)}},
                "build": failed(0, 9)})
    assert first_failure(both, workflow) == "build"
    assert first_failure(run({"build": stage(0, 3)}, phase="Succeeded"), workflow) is None


def test_the_exit_code_comes_from_the_pod_or_else_from_the_stage_message() -> None:
    assert container_failure(FAILURE) == ("main", 3, "Error")
    assert container_failure('container "x" failed: OOMKilled (exit code 137): boom') == \
        ("x", 137, "OOMKilled")
    pod = {"status": {"containerStatuses": [
        {"name": "csc-push", "state": {"terminated": {"exitCode": 0}}},
        {"name": "main", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}}
    assert container_failure("anything", pod) == ("main", 2, "Error")
    assert container_failure("pod was deleted") == (None, None, None)
    assert container_failure(None) == (None, None, None)


def test_the_excerpt_is_the_first_error_lines_with_two_lines_of_context() -> None:
    lines = [f"step {i}" for i in range(1, 11)] + ["ERROR: compile failed"] + \
        [f"after {i}" for i in range(1, 6)] + ["\x1b[31mpanic: again\x1b[0m\n"]
    excerpt, matched = log_excerpt(lines)
    assert matched
    assert [(line.number, line.text, line.match) for line in excerpt] == [
        (9, "step 9", False), (10, "step 10", False), (11, "ERROR: compile failed", True),
        (12, "after 1", False), (13, "after 2", False),
        (15, "after 4", False), (16, "after 5", False), (17, "panic: again", True)]


def test_the_excerpt_keeps_to_twenty_lines_and_without_errors_shows_the_last_lines() -> None:
    noisy = [f"fatal {i}" for i in range(100)]
    excerpt, matched = log_excerpt(noisy)
    assert matched and len(excerpt) == 20 and excerpt[-1].number == 20
    quiet = [f"line {i}" for i in range(1, 31)]
    excerpt, matched = log_excerpt(quiet)
    assert not matched
    assert [line.number for line in excerpt] == list(range(21, 31))
    assert log_excerpt([]) == ([], False)


def test_each_error_word_counts_whatever_its_case() -> None:
    for word in ("Error", "FAIL", "Fatal", "exception", "PANIC", "Traceback",
                 "permission denied", "file Not Found"):
        excerpt, matched = log_excerpt(["ok", word, "ok"])
        assert matched and [line.number for line in excerpt if line.match] == [2], word
    assert not log_excerpt(["all good", "done"])[1]


def test_triage_without_a_green_run_names_the_stage_reason_and_log() -> None:
    red = run({"version": stage(0, 5), "build-linux": failed(5, 40)})
    logs = {"build-linux": ["compiling", "ld: cannot find -lfoo: No such file",
                            "error: linking failed", "done"]}
    found = triage(red, DIAMOND, None, lambda s: logs.get(s, []))
    assert found.stage == "build-linux"
    assert found.headline == "Failed at build-linux: Error (exit code 3)"
    assert (found.container, found.exit_code) == ("main", 3)
    assert [line.number for line in found.log if line.match] == [3]
    assert found.log_matched and found.last_green is None and found.unchanged


def test_triage_of_a_stage_without_logs_or_of_a_run_that_failed_before_any_stage() -> None:
    red = run({"build": failed(0, 1, "pod was deleted", "PodDeleted")})
    found = triage(red, None, None, no_logs)
    assert found.headline == "Failed at build: PodDeleted"
    assert found.log == [] and found.exit_code is None
    early = run({})
    early["status"]["overall"].update(reason="RenderError", message='stage "x": no such secret')
    found = triage(early, None, None, no_logs)
    assert found.stage is None
    assert found.headline == 'Failed: stage "x": no such secret'


def test_triage_tells_what_changed_since_the_last_green_run() -> None:
    green = run({"build": stage(0, 5)}, name="green", phase="Succeeded",
                parameters={"FAIL": "no", "KEEP": "1"}, variables={"ENV": "dev"},
                commit="abc123")
    red = run({"build": failed(0, 5)}, parameters={"FAIL": "yes", "KEEP": "1"},
              variables={"ENV": "dev", "NEW": "x"}, commit="def456")
    found = triage(red, None, green, no_logs)
    assert found.last_green == "green"
    assert found.commit == ("abc123", "def456")
    assert found.parameters == [Change("build/FAIL", "no", "yes"),
                                Change("src/SCM_REVISION", "abc123", "def456")]
    assert found.variables == [Change("NEW", None, "x")]
    assert not found.unchanged
    same = triage(run({"build": failed(0, 5)}, commit="abc123"), None,
                  run({}, name="g", phase="Succeeded", commit="abc123"), no_logs)
    assert same.commit is None and same.unchanged


def specs(**by_stage: Any) -> dict[str, str]:
    return {STAGE_SPECS_ANNOTATION: json.dumps(by_stage)}


def test_recorded_stage_specs_are_diffed_stage_by_stage() -> None:
    green = run({}, name="green", phase="Succeeded",
                annotations=specs(build={"image": "go:1.21"}, lint={"image": "x"}))
    red = run({"build": failed(0, 5)},
              annotations=specs(build={"image": "go:1.22"}, lint={"image": "x"}))
    found = triage(red, None, green, no_logs)
    assert [d.stage for d in found.spec_diffs] == ["build"]
    diff = found.spec_diffs[0].diff
    assert '-  "image": "go:1.21"' in diff and '+  "image": "go:1.22"' in diff
    assert found.spec_note == ""


def test_without_a_recorded_spec_the_current_stage_objects_are_compared_and_it_is_said() -> None:
    green = run({}, name="green", phase="Succeeded", annotations=specs(build={"image": "a"}))
    red = run({"build": failed(0, 5)})
    current = {"build": {"metadata": {"generation": 2}, "spec": {"image": "b"}}}
    found = triage(red, None, green, no_logs, stages=current)
    assert [d.stage for d in found.spec_diffs] == ["build"]
    assert "current Stage objects" in found.spec_note
    neither = triage(red, None, run({}, name="g", phase="Succeeded"), no_logs,
                     stages=current)
    assert neither.spec_diffs == []
    assert "do not record" in neither.spec_note and "build" in neither.spec_note
    untouched = triage(red, None, run({}, name="g", phase="Succeeded"), no_logs,
                       stages={"build": {"metadata": {"generation": 1}, "spec": {}}})
    assert "edited" not in untouched.spec_note
