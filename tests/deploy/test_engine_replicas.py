"""Two `cyclone engine` replicas with leader election on one embedded store: the leader is
SIGKILLed mid-run, the other takes over within its lease duration and every run finishes
with one pod per stage."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest
from engine.harness import (
    NAMESPACE,
    overall,
    running_env,
    shell_stage,
    workflow,
    workflow_run,
)
from support.clusters import eventually

from cyclone.kube import kinds

from .replicas import (
    TAKEOVER_BOUND,
    TIMINGS,
    lease_holder,
    pods_per_stage,
    start_replica,
    stop_all,
)

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap (bwrap) not installed")

RUNS = 4
STAGES = 4


async def test_killed_leader_is_replaced_within_the_lease_and_runs_finish(tmp_path):
    async with running_env(tmp_path, with_engine=False) as env:
        await env.apply(
            *(shell_stage(f"s{i}", "sleep 0.3") for i in range(STAGES)),
            workflow("chain", [{"name": f"s{i}", "depends": [f"s{i - 1}"] if i else []}
                               for i in range(STAGES)]),
        )
        where = ["--embedded", str(env.data_dir / "cluster.db")]
        replicas = [await start_replica(name, where, tmp_path) for name in ("engine-a",
                                                                            "engine-b")]
        by_name = {r.identity: r for r in replicas}
        try:
            leader = await eventually(lambda: lease_holder(env.cluster), timeout=30)
            for index in range(RUNS):
                await env.apply(workflow_run(f"run-{index}", "chain"))
            await eventually(lambda: env.pods(), timeout=30)
            runs = (await env.cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)).items
            assert any(overall(r).get("phase") != "Succeeded" for r in runs)

            by_name[leader].kill()
            killed_at = time.monotonic()
            await by_name[leader].process.wait()
            successor = await eventually(
                lambda: _other_holder(env.cluster, leader), timeout=TAKEOVER_BOUND + 10
            )
            took_over_after = time.monotonic() - killed_at
            finished = [await env.wait_phase(f"run-{i}", "Succeeded", within=60)
                        for i in range(RUNS)]
            pods = await env.pods()
            survivor = by_name[successor]
            assert survivor.process.returncode is None, survivor.log()
        finally:
            await stop_all(replicas)

    assert successor != leader
    assert took_over_after <= TAKEOVER_BOUND, took_over_after
    assert TIMINGS.lease_duration <= TAKEOVER_BOUND
    assert all(overall(run)["phase"] == "Succeeded" for run in finished)
    expected = {(f"run-{r}", f"s{s}") for r in range(RUNS) for s in range(STAGES)}
    assert set(pods_per_stage(pods)) == expected
    assert set(pods_per_stage(pods).values()) == {1}
    assert set(pods_per_stage(pods, phase="Succeeded").values()) == {1}


async def test_follower_does_not_reconcile_while_the_leader_holds_the_lease(tmp_path):
    async with running_env(tmp_path, with_engine=False) as env:
        await env.apply(shell_stage("s0", "true"), workflow("one", [{"name": "s0"}]))
        where = ["--embedded", str(env.data_dir / "cluster.db")]
        replicas = [await start_replica(name, where, tmp_path) for name in ("engine-a",
                                                                            "engine-b")]
        try:
            leader = await eventually(lambda: lease_holder(env.cluster), timeout=30)
            await env.apply(workflow_run("run-0", "one"))
            await env.wait_phase("run-0", "Succeeded", within=30)
            follower = next(r for r in replicas if r.identity != leader)
            await asyncio.sleep(TIMINGS.retry_period * 4)
            assert await lease_holder(env.cluster) == leader
            assert follower.process.returncode is None, follower.log()
            follower_log = follower.log()
        finally:
            await stop_all(replicas)
    assert f"{follower.identity} campaigning" in follower_log
    assert "engine ready" not in follower_log
    assert f"{leader} leads" not in follower_log


async def _other_holder(cluster, leader: str) -> str | None:
    holder = await lease_holder(cluster)
    return holder if holder not in (None, leader) else None

