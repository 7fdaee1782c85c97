"""Objects written straight to the cluster (as kubectl does, past the server's checks) that
the API would refuse fail their run before any pod starts, naming the field; stages a run
never began are Cancelled with the run's reason, not left Pending."""

from __future__ import annotations

import pytest

from .harness import BACKENDS, overall, shell_stage, stage_status, workflow, workflow_run

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


async def test_a_misspelt_pod_field_fails_the_run_naming_stage_and_field(env):
    broken = shell_stage("build", "true")
    broken["spec"]["pod"]["spec"]["containers"][0]["comand"] = ["make"]
    await env.apply(
        broken,
        shell_stage("test", "true"),
        workflow("wf", [{"name": "build"}, {"name": "test", "depends": ["build"]}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_phase("r1", "Failed")
    assert (overall(run)["reason"], overall(run)["message"]) == (
        "InvalidWorkflowRun",
        "stage build: spec.pod.spec.containers[0].comand: unknown field 'comand' "
        "(did you mean 'command'?)")
    for name in ("build", "test"):
        assert (stage_status(run, name)["phase"], stage_status(run, name)["reason"]) == (
            "Cancelled", "InvalidWorkflowRun")
    assert await env.pods() == []


async def test_stages_of_a_run_failed_by_a_missing_stage_are_cancelled_not_pending(env):
    await env.apply(
        shell_stage("present", "true"),
        workflow("wf", [{"name": "present"}, {"name": "absent", "depends": ["present"]}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_phase("r1", "Failed")
    for name in ("present", "absent"):
        status = stage_status(run, name)
        assert (status["phase"], status["reason"]) == ("Cancelled", "StageNotFound")
        assert status["message"] == "not started: stage(s) absent of workflow wf not found"


async def test_stages_of_a_run_stopped_before_it_began_are_cancelled_not_missing(env):
    stopped = workflow_run("r1", "wf")
    stopped["spec"]["stopped"] = True
    await env.apply(
        shell_stage("build", "true"), shell_stage("test", "true"),
        workflow("wf", [{"name": "build"}, {"name": "test", "depends": ["build"]}]),
        stopped,
    )
    run = await env.wait_phase("r1", "Cancelled")
    for name in ("build", "test"):
        status = stage_status(run, name)
        assert (status["phase"], status["reason"]) == ("Cancelled", "ManuallyStop")
        assert status["message"].startswith("not started")
    assert await env.pods() == []
