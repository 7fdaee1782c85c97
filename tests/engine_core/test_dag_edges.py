"""DAG step edge cases: API status objects, redundant edges and the run's sub-graph."""

from cyclone.api.common import Phase, Status
from cyclone.api.workflowrun import StageStatus
from cyclone.engine.core.dag import (
    DagStage,
    blocked_stages,
    next_runnable_stages,
    plan_step,
    scope_problems,
    stages_in_scope,
    upstream_stages,
)

from .fixtures import DIAMOND

# "z" depends on "r" and also directly on "q", which "r" already depends on
REDUNDANT = [
    DagStage("p"),
    DagStage("q"),
    DagStage("r", ("q",)),
    DagStage("z", ("p", "q", "r")),
]


def test_stage_status_models_with_enum_phases_drive_the_step():
    statuses = {
        "a": StageStatus(status=Status(phase=Phase.SUCCEEDED)),
        "e": StageStatus(status=Status(phase=Phase.RUNNING)),
    }
    assert next_runnable_stages(DIAMOND, statuses) == ["b", "c"]


def test_a_failed_stage_status_model_blocks_its_dependents():
    statuses = {"a": StageStatus(status=Status(phase=Phase.FAILED))}
    assert plan_step(DIAMOND, statuses).blocked == ["b", "c", "d"]


def test_status_objects_with_a_phase_attribute_are_read():
    assert next_runnable_stages(DIAMOND, {"a": Status(phase=Phase.SUCCEEDED)}) == ["b", "c", "e"]


def test_status_objects_without_a_phase_attribute_are_read_through_status():
    class Entry:
        def __init__(self, phase):
            self.status = {"phase": phase}

    assert next_runnable_stages(DIAMOND, {"a": Entry("Succeeded"), "e": Entry("Running")}) == [
        "b",
        "c",
    ]


def test_run_status_dicts_holding_enum_phases_are_read():
    statuses = {"a": {"phase": Phase.SUCCEEDED}, "e": {"status": {"phase": Phase.RUNNING}}}
    assert next_runnable_stages(DIAMOND, statuses) == ["b", "c"]


def test_upstream_stages_follow_every_path_of_a_redundant_dependency():
    assert upstream_stages(REDUNDANT, "z") == {"p", "q", "r"}


def test_upstream_stages_of_an_unknown_stage_is_empty():
    assert upstream_stages(DIAMOND, "nope") == set()


def test_end_stages_keep_every_upstream_stage_of_a_redundant_dependency():
    assert stages_in_scope(REDUNDANT, None, ["z"]) == ["p", "q", "r", "z"]
    assert next_runnable_stages(REDUNDANT, {"q": "Succeeded", "r": "Succeeded"}, None, ["z"]) == [
        "p"
    ]


def test_a_dependency_outside_start_stages_blocks_nothing():
    assert blocked_stages(DIAMOND, {}, start_stages=["b"]) == []
    step = plan_step(DIAMOND, {}, start_stages=["b"])
    assert (step.start, step.blocked) == (["b"], [])


def test_a_failure_outside_start_stages_blocks_nothing():
    assert blocked_stages(DIAMOND, {"a": "Failed"}, start_stages=["b"]) == []


def test_start_and_end_stages_that_select_nothing_name_both_fields():
    assert scope_problems(DIAMOND, ["e"], ["d"]) == [
        ("spec.endStages", "no stage both follows startStages and leads to endStages")
    ]
