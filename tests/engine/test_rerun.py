"""A rerun of a succeeded run, created as the REST route creates it (through `start_run`),
runs every stage again; a retry takes the succeeded stages over."""

from __future__ import annotations

import pytest

from cyclone.engine.core.runstart import RERUN, RETRY, repeated_run
from cyclone.engine.core.stagestart import REASON_REUSED
from cyclone.engine.runstart import start_run

from .harness import (
    API,
    BACKENDS,
    NAMESPACE,
    outputs,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)


async def _repeat(env, old: dict, how: str) -> str:
    body = repeated_run(old, how, "abcde")
    created = await start_run(env.cluster, {
        "apiVersion": API, "kind": "WorkflowRun",
        "metadata": {**body["metadata"], "namespace": NAMESPACE}, "spec": body["spec"]})
    return created["metadata"]["name"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_rerun_runs_every_stage_again_a_retry_reuses_them(env):
    await env.apply(
        shell_stage("build", "echo \"stamp:$(date +%s%N)\" > /cyclone/results/__result__"),
        shell_stage("check", "test -n \"${stages.build.outputs.stamp}\""),
        workflow("wf", [{"name": "build"}, {"name": "check", "depends": ["build"]}]),
        workflow_run("r1", "wf"),
    )
    first = await env.wait_phase("r1", "Succeeded", within=60)
    stamp = outputs(first, "build")["stamp"]

    rerun = await env.wait_phase(await _repeat(env, first, RERUN), "Succeeded", within=60)
    assert "retryOf" not in rerun["spec"]
    for stage in ("build", "check"):
        assert stage_status(rerun, stage).get("reason") != REASON_REUSED
    assert outputs(rerun, "build")["stamp"] != stamp

    retry = await env.wait_phase(await _repeat(env, first, RETRY), "Succeeded", within=60)
    assert stage_status(retry, "build")["reason"] == REASON_REUSED
    assert outputs(retry, "build")["stamp"] == stamp
