"""Runs created directly in the cluster (as a kubectl user would) with input the API
refuses end Failed with a clear reason instead of crashing the engine or staying Pending."""

from __future__ import annotations

import pytest

from .harness import BACKENDS, overall, shell_stage, workflow, workflow_run

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


async def test_a_run_with_an_absurd_timeout_fails_with_the_reason(env):
    await env.apply(
        shell_stage("build", "true"),
        workflow("ci", [{"name": "build"}]),
        workflow_run("absurd", "ci", timeout="99999999999h"),
        workflow_run("sane", "ci", timeout="10m"),
    )
    run = await env.wait_phase("absurd", "Failed")
    assert overall(run)["reason"] == "InvalidWorkflowRun"
    assert "maximum of 30 days" in overall(run)["message"]
    assert overall(await env.wait_phase("sane", "Succeeded"))["phase"] == "Succeeded"


async def test_a_run_naming_unknown_stages_fails_instead_of_staying_pending(env):
    await env.apply(
        shell_stage("build", "true"),
        workflow("ci", [{"name": "build"}]),
        workflow_run("unknown-start", "ci", startStages=["nope"]),
        workflow_run("unknown-end", "ci", endStages=["build", "later"]),
    )
    run = await env.wait_phase("unknown-start", "Failed")
    assert overall(run)["reason"] == "InvalidWorkflowRun"
    assert 'spec.startStages[0]: unknown stage "nope"' in overall(run)["message"]
    run = await env.wait_phase("unknown-end", "Failed")
    assert 'spec.endStages[1]: unknown stage "later"' in overall(run)["message"]


async def test_a_run_of_a_workflow_without_stages_fails(env):
    await env.apply(workflow("empty", []), workflow_run("nothing", "empty"))
    run = await env.wait_phase("nothing", "Failed")
    assert overall(run)["reason"] == "InvalidWorkflowRun"
    assert "the workflow has no stages" in overall(run)["message"]
