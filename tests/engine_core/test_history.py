"""The run history limit: which runs of a workflow are deleted, given the list."""

from __future__ import annotations

from cyclone.engine.core.history import (
    ANNOTATION_MAX_WORKFLOWRUNS,
    history_limit,
    runs_to_prune,
)


def run(name: str, phase: str | None, ended: str | None = None, *, created: str | None = None,
        deleting: bool = False, retry_of: str | None = None) -> dict:
    meta: dict = {"name": name, "creationTimestamp": created or "2026-01-01T00:00:00Z"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    status: dict = {}
    if phase:
        status["overall"] = {"phase": phase}
    if ended:
        status["completionTime"] = ended
    spec = {"retryOf": retry_of} if retry_of else {}
    return {"metadata": meta, "spec": spec, "status": status}


def names(runs: list) -> list[str]:
    return [r["metadata"]["name"] for r in runs]


def test_keeps_the_newest_finished_runs_and_deletes_the_oldest_first() -> None:
    runs = [
        run("c", "Succeeded", "2026-01-01T00:00:03Z"),
        run("a", "Failed", "2026-01-01T00:00:01Z"),
        run("d", "Cancelled", "2026-01-01T00:00:04Z"),
        run("b", "Succeeded", "2026-01-01T00:00:02Z"),
    ]
    assert names(runs_to_prune(runs, 2)) == ["a", "b"]


def test_unfinished_runs_are_never_deleted_and_do_not_count() -> None:
    runs = [
        run("old-running", "Running", created="2025-01-01T00:00:00Z"),
        run("pending", "Pending"),
        run("new", None),
        run("f1", "Succeeded", "2026-01-01T00:00:01Z"),
        run("f2", "Succeeded", "2026-01-01T00:00:02Z"),
    ]
    assert names(runs_to_prune(runs, 1)) == ["f1"]
    assert runs_to_prune(runs, 2) == []


def test_runs_being_deleted_neither_count_nor_are_deleted_again() -> None:
    runs = [
        run("gone", "Succeeded", "2026-01-01T00:00:09Z", deleting=True),
        run("f1", "Succeeded", "2026-01-01T00:00:01Z"),
        run("f2", "Succeeded", "2026-01-01T00:00:02Z"),
    ]
    assert runs_to_prune(runs, 2) == []
    assert names(runs_to_prune(runs, 1)) == ["f1"]


def test_a_run_an_unfinished_retry_names_is_spared() -> None:
    runs = [
        run("first", "Failed", "2026-01-01T00:00:01Z"),
        run("second", "Succeeded", "2026-01-01T00:00:02Z"),
        run("third", "Succeeded", "2026-01-01T00:00:03Z"),
        run("retry", "Running", retry_of="first"),
    ]
    assert names(runs_to_prune(runs, 1)) == ["second"]


def test_a_run_a_finished_retry_names_may_go() -> None:
    runs = [
        run("first", "Failed", "2026-01-01T00:00:01Z"),
        run("retry", "Succeeded", "2026-01-01T00:00:02Z", retry_of="first"),
    ]
    assert names(runs_to_prune(runs, 1)) == ["first"]


def test_ties_in_end_time_go_by_creation_then_name() -> None:
    same = "2026-01-01T00:00:05Z"
    runs = [
        run("y", "Succeeded", same, created="2026-01-01T00:00:01Z"),
        run("x", "Succeeded", same, created="2026-01-01T00:00:02Z"),
        run("z", "Succeeded", same, created="2026-01-01T00:00:02Z"),
    ]
    assert names(runs_to_prune(runs, 1)) == ["y", "x"]


def test_end_time_falls_back_to_the_overall_transition_then_creation() -> None:
    by_transition = run("t", "Succeeded")
    by_transition["status"]["overall"]["lastTransitionTime"] = "2026-03-01T00:00:00Z"
    by_creation = run("c", "Succeeded", created="2026-02-01T00:00:00Z")
    unparsable = run("u", "Succeeded", "not a time")
    assert names(runs_to_prune([by_transition, by_creation, unparsable], 1)) == ["u", "c"]


def test_limit_zero_keeps_everything() -> None:
    runs = [run(f"r{i}", "Succeeded", f"2026-01-01T00:00:0{i}Z") for i in range(5)]
    assert runs_to_prune(runs, 0) == []


def test_the_workflow_annotation_overrides_the_engine_default() -> None:
    def wf(value: str | None) -> dict:
        annotations = {ANNOTATION_MAX_WORKFLOWRUNS: value} if value is not None else {}
        return {"metadata": {"name": "wf", "annotations": annotations}}

    assert history_limit(None, 100) == 100
    assert history_limit(wf(None), 100) == 100
    assert history_limit(wf("5"), 100) == 5
    assert history_limit(wf(" 0 "), 100) == 0
    assert history_limit(wf("-3"), 100) == 100
    assert history_limit(wf("many"), 100) == 100
    assert history_limit(wf("2.5"), 7) == 7


def test_the_completion_time_orders_runs_whatever_their_names_and_creation() -> None:
    runs = [
        run("a", "Succeeded", "2026-01-01T00:00:09Z", created="2026-01-01T00:00:01Z"),
        run("z", "Succeeded", "2026-01-01T00:00:05Z", created="2026-01-01T00:00:02Z"),
    ]
    runs[0]["status"]["overall"]["lastTransitionTime"] = "2026-01-01T00:00:01Z"
    assert names(runs_to_prune(runs, 1)) == ["z"]


def test_without_completion_time_the_last_transition_orders_runs() -> None:
    runs = [run("a", "Failed", created="2026-01-01T00:00:01Z"),
            run("z", "Failed", created="2026-01-01T00:00:02Z")]
    runs[0]["status"]["overall"]["lastTransitionTime"] = "2026-01-01T00:10:00Z"
    runs[1]["status"]["overall"]["lastTransitionTime"] = "2026-01-01T00:05:00Z"
    assert names(runs_to_prune(runs, 1)) == ["z"]


def test_a_run_without_any_end_time_counts_as_ending_when_it_was_created() -> None:
    runs = [run("a", "Failed", created="2026-01-01T00:00:09Z"),
            run("z", "Failed", "2026-01-01T00:00:05Z", created="2026-01-01T00:00:02Z")]
    assert names(runs_to_prune(runs, 1)) == ["z"]
