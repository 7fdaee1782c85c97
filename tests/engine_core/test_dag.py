import pytest

from cyclone.engine.core.dag import (
    DagStage,
    blocked_stages,
    dag_stages,
    next_runnable_stages,
    plan_step,
    stages_in_scope,
    upstream_stages,
)

from .fixtures import DIAMOND


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({}, ["a", "e"]),
        ({"a": "Pending", "e": "Pending"}, ["a", "e"]),
        ({"a": "Running", "e": "Running"}, []),
        ({"a": "Succeeded", "e": "Running"}, ["b", "c"]),
        ({"a": "Succeeded", "b": "Succeeded", "c": "Running", "e": "Succeeded"}, []),
        ({"a": "Succeeded", "b": "Succeeded", "c": "Succeeded", "e": "Succeeded"}, ["d"]),
        ({"a": "Failed", "e": "Succeeded"}, []),
        ({"a": "Succeeded", "b": "Waiting", "c": "Succeeded", "e": "Succeeded"}, []),
        ({"a": "Succeeded", "b": "Running", "c": "Pending", "e": "Succeeded"}, ["c"]),
        (
            {"a": "Succeeded", "b": "Succeeded", "c": "Succeeded", "d": "Succeeded",
             "e": "Succeeded"},
            [],
        ),
    ],
)
def test_next_runnable_stages_follow_dependencies(statuses, expected):
    assert next_runnable_stages(DIAMOND, statuses) == expected


def test_trivial_failed_dependency_counts_as_satisfied():
    stages = [DagStage("lint", trivial=True), DagStage("build", ("lint",))]
    assert next_runnable_stages(stages, {"lint": "Failed"}) == ["build"]
    assert next_runnable_stages(stages, {"lint": "Cancelled"}) == ["build"]


def test_non_trivial_failed_dependency_is_not_satisfied():
    stages = [DagStage("lint"), DagStage("build", ("lint",))]
    assert next_runnable_stages(stages, {"lint": "Failed"}) == []
    assert next_runnable_stages(stages, {"lint": "Cancelled"}) == []


def test_models_and_dicts_are_accepted_as_stages():
    class Item:
        def __init__(self, name, depends=None, trivial=None):
            self.name, self.depends, self.trivial = name, depends, trivial

    stages = [Item("a"), {"name": "b", "depends": ["a"], "trivial": True}]
    assert dag_stages(stages) == [DagStage("a"), DagStage("b", ("a",), True)]
    assert next_runnable_stages(stages, {"a": "Succeeded"}) == ["b"]


def test_status_entries_may_be_run_status_objects():
    statuses = {"a": {"status": {"phase": "Succeeded"}}, "e": {"phase": "Running"}}
    assert next_runnable_stages(DIAMOND, statuses) == ["b", "c"]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, ["a", "b", "c", "d", "e"]),
        (["b"], None, ["b", "d"]),
        (None, ["b"], ["a", "b"]),
        (["b"], ["d"], ["b", "d"]),
        (["a"], ["c"], ["a", "c"]),
        (["e"], ["d"], []),
        (["unknown"], None, []),
        (["b", "c"], None, ["b", "c", "d"]),
    ],
)
def test_stages_in_scope_is_reachable_from_start_and_leads_to_end(start, end, expected):
    assert stages_in_scope(DIAMOND, start, end) == expected


def test_dependencies_outside_scope_count_as_satisfied():
    assert next_runnable_stages(DIAMOND, {}, start_stages=["b"]) == ["b"]
    assert next_runnable_stages(DIAMOND, {"b": "Succeeded"}, start_stages=["b"]) == ["d"]


def test_stages_outside_scope_never_run():
    assert next_runnable_stages(DIAMOND, {}, end_stages=["b"]) == ["a"]
    assert next_runnable_stages(DIAMOND, {"a": "Succeeded"}, end_stages=["b"]) == ["b"]


def test_blocked_stages_are_transitive_downstream_of_a_non_trivial_failure():
    assert blocked_stages(DIAMOND, {"a": "Failed", "e": "Running"}) == ["b", "c", "d"]
    assert blocked_stages(DIAMOND, {"a": "Succeeded", "b": "Failed", "c": "Running"}) == ["d"]


def test_a_trivial_failure_blocks_nothing():
    stages = [DagStage("a", trivial=True), DagStage("b", ("a",))]
    assert blocked_stages(stages, {"a": "Failed"}) == []


def test_a_blocked_trivial_stage_still_blocks_its_dependents():
    stages = [DagStage("a"), DagStage("b", ("a",), trivial=True), DagStage("c", ("b",))]
    assert blocked_stages(stages, {"a": "Failed"}) == ["b", "c"]


def test_started_stages_are_never_blocked():
    assert blocked_stages(DIAMOND, {"a": "Failed", "b": "Running"}) == ["c", "d"]


def test_blocked_stages_respect_scope():
    assert blocked_stages(DIAMOND, {"a": "Failed"}, end_stages=["b"]) == ["b"]


def test_plan_step_reports_start_and_blocked_together():
    step = plan_step(DIAMOND, {"a": "Succeeded", "b": "Failed", "e": "Succeeded"})
    assert step.start == ["c"]
    assert step.blocked == ["d"]


def test_upstream_stages_are_transitive():
    assert upstream_stages(DIAMOND, "d") == {"a", "b", "c"}
    assert upstream_stages(DIAMOND, "b") == {"a"}
    assert upstream_stages(DIAMOND, "e") == set()
