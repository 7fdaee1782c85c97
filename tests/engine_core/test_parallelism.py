from datetime import UTC, datetime, timedelta

import pytest

from cyclone.engine.core.parallelism import (
    Admission,
    ParallelismLimits,
    RunInfo,
    admit_run,
    runs_to_start,
)

QUEUE, REJECT = Admission.QUEUE, Admission.REJECT
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def info(name, minute, workflow="wf", phase=None, queued=False):
    return RunInfo(name, workflow, T0 + timedelta(minutes=minute), phase, queued)


def test_unlimited_starts_everything():
    runs = [info("a", 0), info("b", 1, phase="Running")]
    assert admit_run("a", runs, ParallelismLimits()) is Admission.START


def test_active_and_terminal_runs_keep_their_state():
    runs = [info("a", 0, phase="Running"), info("b", 1, phase="Succeeded")]
    limits = ParallelismLimits(max_running=0, max_queued=0)
    assert admit_run("a", runs, limits) is Admission.START
    assert admit_run("b", runs, limits) is Admission.FINISHED


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (ParallelismLimits(max_running=1, max_queued=5), Admission.QUEUE),
        (ParallelismLimits(max_running=1, max_queued=0), Admission.REJECT),
        (ParallelismLimits(max_running=2), Admission.START),
        (ParallelismLimits(per_workflow_max_running=1, per_workflow_max_queued=1), QUEUE),
        (ParallelismLimits(per_workflow_max_running=1, per_workflow_max_queued=0), REJECT),
    ],
)
def test_new_run_against_one_running(limits, expected):
    runs = [info("a", 0, phase="Running"), info("b", 1)]
    assert admit_run("b", runs, limits) is expected


def test_queue_is_full_means_reject():
    runs = [
        info("a", 0, phase="Running"),
        info("q1", 1, queued=True),
        info("q2", 2, queued=True),
        info("new", 3),
    ]
    assert admit_run("new", runs, ParallelismLimits(max_running=1, max_queued=2)) is (
        Admission.REJECT
    )
    assert admit_run("new", runs, ParallelismLimits(max_running=1, max_queued=3)) is (
        Admission.QUEUE
    )


def test_queued_run_is_never_rejected():
    runs = [info("a", 0, phase="Running"), info("q1", 1, queued=True), info("q2", 2, queued=True)]
    assert admit_run("q2", runs, ParallelismLimits(max_running=1, max_queued=0)) is (
        Admission.QUEUE
    )


def test_queued_runs_start_in_creation_order():
    runs = [
        info("done", 0, phase="Failed"),
        info("late", 5, queued=True),
        info("early", 2, queued=True),
        info("mid", 3, queued=True),
    ]
    limits = ParallelismLimits(max_running=2)
    assert runs_to_start(runs, limits) == ["early", "mid"]
    assert admit_run("early", runs, limits) is Admission.START
    assert admit_run("late", runs, limits) is Admission.QUEUE


def test_newer_run_does_not_jump_the_queue():
    runs = [info("q", 1, queued=True), info("new", 2)]
    limits = ParallelismLimits(max_running=1, max_queued=1)
    assert admit_run("q", runs, limits) is Admission.START
    assert admit_run("new", runs, limits) is Admission.QUEUE
    no_queue = ParallelismLimits(max_running=1, max_queued=0)
    assert admit_run("new", runs, no_queue) is Admission.REJECT


def test_a_workflow_at_its_limit_does_not_block_others():
    runs = [
        info("a1", 0, workflow="a", phase="Running"),
        info("a2", 1, workflow="a", queued=True),
        info("b1", 2, workflow="b"),
    ]
    limits = ParallelismLimits(max_running=3, per_workflow_max_running=1)
    assert runs_to_start(runs, limits) == ["b1"]
    assert admit_run("b1", runs, limits) is Admission.START
    assert admit_run("a2", runs, limits) is Admission.QUEUE


def test_per_workflow_queue_limit_counts_only_that_workflow():
    runs = [
        info("a1", 0, workflow="a", phase="Running"),
        info("b1", 0, workflow="b", phase="Running"),
        info("bq", 1, workflow="b", queued=True),
        info("a2", 2, workflow="a"),
    ]
    limits = ParallelismLimits(per_workflow_max_running=1, per_workflow_max_queued=1)
    assert admit_run("a2", runs, limits) is Admission.QUEUE


def test_unknown_run_is_an_error():
    with pytest.raises(KeyError):
        admit_run("x", [], ParallelismLimits())


def test_runs_starting_together_fill_their_workflows_limit_and_no_more():
    runs = [info("a", 0), info("b", 1), info("c", 2), info("x", 3, workflow="other")]
    limits = ParallelismLimits(per_workflow_max_running=2)
    assert runs_to_start(runs, limits) == ["a", "b", "x"]


def test_a_queued_run_created_later_still_takes_a_queue_place():
    runs = [info("active", 0, phase="Running"), info("new", 1), info("queued", 2, queued=True)]
    limits = ParallelismLimits(max_running=1, max_queued=1)
    assert admit_run("new", runs, limits) is REJECT
    assert admit_run("new", runs, ParallelismLimits(max_running=1, max_queued=2)) is QUEUE


def test_the_per_workflow_queue_limit_counts_each_waiting_run_once():
    runs = [info("active", 0, phase="Running"), info("queued", 1, queued=True), info("new", 2)]
    limits = ParallelismLimits(per_workflow_max_running=1, per_workflow_max_queued=2)
    assert admit_run("new", runs, limits) is QUEUE
    runs.insert(2, info("queued2", 1, queued=True))
    assert admit_run("new", runs, limits) is REJECT


def test_an_unknown_run_is_named_in_the_error():
    with pytest.raises(KeyError, match='run "nope" is not among the runs given'):
        admit_run("nope", [info("a", 0)], ParallelismLimits())
