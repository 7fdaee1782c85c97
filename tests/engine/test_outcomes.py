"""How stage outcomes decide a run: failures, trivial stages, sub-graphs, missing parts."""

from __future__ import annotations

import pytest

from .harness import BACKENDS, overall, shell_stage, stage_status, workflow, workflow_run

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


async def test_trivial_failure_does_not_fail_run(env):
    await env.apply(
        shell_stage("lint", "exit 3"),
        shell_stage("build", "true"),
        workflow("wf", [{"name": "lint", "trivial": True},
                        {"name": "build", "depends": ["lint"]}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_phase("r1", "Succeeded", "Failed")
    assert overall(run)["phase"] == "Succeeded"
    assert stage_status(run, "lint")["phase"] == "Failed"
    assert stage_status(run, "build")["phase"] == "Succeeded"


async def test_failed_stage_fails_run_and_cancels_downstream(env):
    await env.apply(
        shell_stage("compile", "echo broken >&2; exit 2"),
        shell_stage("test", "true"),
        shell_stage("side", "true"),
        workflow("wf", [{"name": "compile"}, {"name": "side"},
                        {"name": "test", "depends": ["compile"]}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_phase("r1", "Succeeded", "Failed")
    assert overall(run)["phase"] == "Failed"
    compile_status = stage_status(run, "compile")
    assert compile_status["phase"] == "Failed"
    assert compile_status["reason"] == "PodFailed"
    assert "exit code 2" in compile_status["message"]
    assert stage_status(run, "test")["phase"] == "Cancelled"
    assert stage_status(run, "test")["reason"] == "UpstreamFailed"
    assert stage_status(run, "side")["phase"] == "Succeeded"


async def test_missing_workflow_fails_run_with_reason(env):
    await env.apply(workflow_run("r1", "no-such-workflow"))
    run = await env.wait_phase("r1", "Failed")
    assert overall(run)["reason"] == "WorkflowNotFound"
    assert await env.pods() == []


async def test_missing_stage_fails_run_with_reason(env):
    await env.apply(
        shell_stage("present", "true"),
        workflow("wf", [{"name": "present"}, {"name": "absent", "depends": ["present"]}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_phase("r1", "Failed")
    assert overall(run)["reason"] == "StageNotFound"
    assert "absent" in overall(run)["message"]
    assert await env.pods() == []


async def test_start_and_end_stages_run_only_the_sub_graph(env):
    await env.apply(
        *(shell_stage(n, "true") for n in "abcd"),
        workflow("chain", [{"name": "a"}, {"name": "b", "depends": ["a"]},
                           {"name": "c", "depends": ["b"]}, {"name": "d", "depends": ["c"]}]),
        workflow_run("r1", "chain", startStages=["b"], endStages=["c"]),
    )
    run = await env.wait_phase("r1", "Succeeded", "Failed")
    assert overall(run)["phase"] == "Succeeded"
    assert sorted(run["status"]["stages"]) == ["b", "c"]


async def test_run_records_absolute_deadline_from_timeout(env):
    await env.apply(
        shell_stage("a", "true"),
        workflow("wf", [{"name": "a"}]),
        workflow_run("r1", "wf", timeout="2h"),
    )
    run = await env.wait_phase("r1", "Succeeded")
    from cyclone.engine.core.timefmt import parse_rfc3339

    created = parse_rfc3339(run["metadata"]["creationTimestamp"])
    deadline = parse_rfc3339(run["status"]["deadline"])
    assert 7190 <= (deadline - created).total_seconds() <= 7210
