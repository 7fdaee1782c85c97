"""A diamond DAG runs its stages in dependency order and passes outputs along."""

from __future__ import annotations

import pytest

from .harness import BACKENDS, outputs, shell_stage, stage_status, workflow, workflow_run

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


async def test_diamond_dag_succeeds_in_dependency_order(env):
    await env.apply(
        shell_stage("a", "echo 'x:from-a' > /cyclone/results/__result__"),
        shell_stage("b", "echo 'y:b-saw-${stages.a.outputs.x}' > /cyclone/results/__result__"),
        shell_stage("c", "true"),
        shell_stage("d", "echo \"z:${stages.b.outputs.y}\" > /cyclone/results/__result__"),
        workflow("diamond", [
            {"name": "a"},
            {"name": "b", "depends": ["a"]},
            {"name": "c", "depends": ["a"]},
            {"name": "d", "depends": ["b", "c"]},
        ]),
        workflow_run("diamond-1", "diamond"),
    )
    run = await env.wait_phase("diamond-1", "Succeeded", "Failed")
    assert run["status"]["overall"]["phase"] == "Succeeded", run["status"]
    for name in "abcd":
        assert stage_status(run, name)["phase"] == "Succeeded"
    assert outputs(run, "b") == {"y": "b-saw-from-a"}
    assert outputs(run, "d") == {"z": "b-saw-from-a"}
    started = {n: stage_status(run, n)["startTime"] for n in "abcd"}
    assert started["a"] <= started["b"] <= started["d"]
    assert run["status"]["stages"]["d"]["depends"] == ["b", "c"]
