"""Two `cyclone engine` replicas with leader election on one embedded store: the leader is
SIGKILLed mid-run, the other takes over once its lease has expired and every run finishes
with one pod per stage."""

from __future__ import annotations

import shutil

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
    TIMINGS,
    engine_lease,
    lease_holder,
    lease_moment,
    pods_per_stage,
    start_replica,
    stop_all,
)

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap (bwrap) not installed")

RUNS = 4
STAGES = 4


async def test_killed_leader_is_replaced_once_its_lease_expires_and_runs_finish(tmp_path):
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
            await by_name[leader].process.wait()
            last_held = await engine_lease(env.cluster)
            successor = await eventually(
                lambda: _other_holder(env.cluster, leader), timeout=60
            )
            taken = await engine_lease(env.cluster)
            finished = [await env.wait_phase(f"run-{i}", "Succeeded", within=60)
                        for i in range(RUNS)]
            pods = await env.pods()
            survivor = by_name[successor]
            assert survivor.process.returncode is None, survivor.log()
        finally:
            await stop_all(replicas)

    assert successor != leader
    assert last_held["holderIdentity"] == leader, last_held
    expired_after = lease_moment(taken["acquireTime"]) - lease_moment(last_held["renewTime"])
    assert expired_after.total_seconds() >= TIMINGS.lease_duration, (last_held, taken)
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
            await eventually(lambda: f"{follower.identity} stands by" in follower.log(None),
                             timeout=60)
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

