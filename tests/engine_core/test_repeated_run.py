"""How a finished run is run again (`cyclone.engine.core.runstart`): retry and rerun."""

from __future__ import annotations

from cyclone.api import keys
from cyclone.engine.core.delegation import result_annotation
from cyclone.engine.core.runstart import RERUN, RETRY, repeated_run, retry_refusal

OLD = {
    "metadata": {
        "name": "ci-abcde",
        "labels": {keys.LABEL_PROJECT: "demo", keys.LABEL_WORKFLOW: "ci"},
        "annotations": {
            keys.ANNOTATION_DESCRIPTION: "nightly",
            keys.ANNOTATION_ALIAS: "Nightly build",
            keys.ANNOTATION_STOP_REASON: "Superseded",
            keys.ANNOTATION_STOP_MESSAGE: "a newer push came",
            "workflowrun.cyclone.dev/stop-force": "true",
            result_annotation("deploy"): "signed result",
        },
    },
    "spec": {"workflowRef": {"name": "ci"}, "retryOf": "ci-older", "stopped": True,
             "globalVariables": [{"name": "A", "value": "1"}],
             "stages": [{"name": "build", "parameters": [{"name": "cmd", "value": "make"}]}]},
    "status": {"overall": {"phase": "Failed"}},
}


def test_a_retry_names_the_old_run_and_keeps_its_spec() -> None:
    body = repeated_run(OLD, RETRY, "xyz12")
    assert body["metadata"]["name"] == "ci-abcde-retry-xyz12"
    assert body["spec"]["retryOf"] == "ci-abcde"
    assert body["spec"]["globalVariables"] == [{"name": "A", "value": "1"}]
    assert body["spec"]["stages"] == OLD["spec"]["stages"]
    assert body["metadata"]["labels"] == OLD["metadata"]["labels"]


def test_a_rerun_runs_every_stage_again_with_the_same_parameters() -> None:
    body = repeated_run(OLD, RERUN, "xyz12")
    assert body["metadata"]["name"] == "ci-abcde-rerun-xyz12"
    assert "retryOf" not in body["spec"]
    assert body["spec"]["stages"] == OLD["spec"]["stages"]
    assert body["spec"]["globalVariables"] == OLD["spec"]["globalVariables"]


def test_a_repeat_leaves_behind_how_the_old_run_was_stopped_and_its_results() -> None:
    for how in (RETRY, RERUN):
        annotations = repeated_run(OLD, how, "xyz12")["metadata"]["annotations"]
        assert annotations == {keys.ANNOTATION_DESCRIPTION: "nightly"}


def test_a_long_run_name_is_cut_so_the_repeat_name_fits_a_label() -> None:
    old = {**OLD, "metadata": {**OLD["metadata"], "name": "a" * 49 + "-" + "b" * 13}}
    name = repeated_run(old, RERUN, "xyz12")["metadata"]["name"]
    assert name == "a" * 49 + "-rerun-xyz12"
    assert len(name) <= 63


def test_only_a_succeeded_run_has_nothing_to_retry() -> None:
    succeeded = {**OLD, "status": {"overall": {"phase": "Succeeded"}}}
    refusal = retry_refusal(succeeded)
    assert refusal is not None and refusal.conflict
    assert refusal.message == ("run ci-abcde succeeded: nothing to retry; "
                               "use `cyclone rerun ci-abcde`")
    for phase in ("Failed", "Cancelled", "Running", None):
        assert retry_refusal({**OLD, "status": {"overall": {"phase": phase}}}) is None
