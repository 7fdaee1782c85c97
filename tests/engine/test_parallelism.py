"""Parallelism limits: runs queue in creation order and the queue overflows into failure."""

from __future__ import annotations

from cyclone.engine.config import EngineConfig, QueueLimits
from cyclone.engine.core.timefmt import parse_rfc3339

from .gates import Gate
from .harness import overall, running_env, shell_stage, stage_status, workflow, workflow_run
from .test_control import gate_script


async def test_runs_queue_in_creation_order_and_overflow_fails(tmp_path):
    gate = Gate()
    config = EngineConfig(
        gc_enabled=False, watch_pod_events=False,
        overall=QueueLimits(max_running=1, max_queued=1),
    )
    async with running_env(tmp_path, config) as env:
        await env.apply(
            shell_stage("work", gate_script(gate)),
            workflow("wf", [{"name": "work"}]),
            workflow_run("q1", "wf"),
            workflow_run("q2", "wf"),
            workflow_run("q3", "wf"),
        )
        q3 = await env.wait_phase("q3", "Failed")
        assert overall(q3)["reason"] == "TooManyWaiting"
        q2 = await env.wait_run("q2", lambda r: (r.get("status") or {}).get("queued") is True)
        assert overall(q2)["phase"] == "Pending"
        assert "work" not in q2["status"].get("stages", {})
        q1 = await env.wait_run("q1", lambda r: stage_status(r, "work").get("phase") == "Running")
        assert not q1["status"].get("queued")

        gate.touch()
        q1 = await env.wait_phase("q1", "Succeeded")
        q2 = await env.wait_phase("q2", "Succeeded")
    first_done = parse_rfc3339(q1["status"]["completionTime"])
    second_started = parse_rfc3339(stage_status(q2, "work")["startTime"])
    assert second_started >= first_done


async def test_per_workflow_limit_leaves_other_workflows_free(tmp_path):
    gate = Gate()
    config = EngineConfig(
        gc_enabled=False, watch_pod_events=False,
        per_workflow=QueueLimits(max_running=1, max_queued=5),
    )
    async with running_env(tmp_path, config) as env:
        await env.apply(
            shell_stage("held", gate_script(gate)),
            shell_stage("quick", "true"),
            workflow("slow", [{"name": "held"}]),
            workflow("fast", [{"name": "quick"}]),
            workflow_run("s1", "slow"),
            workflow_run("s2", "slow"),
            workflow_run("f1", "fast"),
        )
        await env.wait_phase("f1", "Succeeded")
        s2 = await env.wait_run("s2", lambda r: (r.get("status") or {}).get("queued") is True)
        assert overall(s2)["phase"] == "Pending"
        gate.touch()
        await env.wait_phase("s1", "Succeeded")
        await env.wait_phase("s2", "Succeeded")
