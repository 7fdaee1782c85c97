"""Backoffs and deadlines of a run, on an engine whose clock only moves when the test says.

Each test stops the clock just before the moment a delay ends and has the run controller look
at the run (`Env.looked_at`): nothing may happen yet. Then it moves the clock just past that
moment and waits for the engine to act on its own timer.
"""

from __future__ import annotations

import pytest
from support.clusters import eventually

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.timefmt import parse_rfc3339
from cyclone.kube.clock import ManualClock
from cyclone.kube.protocol import Cluster

from .gates import Gate
from .harness import (
    BACKENDS,
    overall,
    quota_of_pods,
    running_env,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

QUOTA_REFUSED = "RetryOnExceededQuotaTimeout"
RETRYING = "RetryAfterFailure"


class PodCreations:
    """The cluster as the engine sees it, noting on the engine's clock each time the engine
    asks for a stage pod (whether the cluster admits it or not)."""

    def __init__(self, cluster: Cluster, clock: ManualClock) -> None:
        self._cluster = cluster
        self._clock = clock
        self.at: list[float] = []

    def __getattr__(self, name: str):
        return getattr(self._cluster, name)

    async def create(self, obj: dict, *, namespace: str | None = None) -> dict:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if obj.get("kind") == "Pod" and labels.get(keys.LABEL_POD_KIND) == keys.POD_KIND_WORKLOAD:
            self.at.append(self._clock.monotonic())
        return await self._cluster.create(obj, namespace=namespace)


def advance_to(clock: ManualClock, moment: float) -> None:
    clock.advance(moment - clock.monotonic())


async def test_a_stage_refused_by_quota_is_retried_at_doubling_intervals_up_to_the_max(
        tmp_path, backend):
    clock = ManualClock()
    config = EngineConfig(gc_enabled=False, watch_pod_events=False,
                          quota_retry_backoff_seconds=1, quota_retry_max_backoff_seconds=4)
    creations: list[PodCreations] = []

    def recorder(cluster: Cluster) -> Cluster:
        creations.append(PodCreations(cluster, clock))
        return creations[0]

    async with running_env(tmp_path, config, backend=backend, clock=clock,
                           engine_sees=recorder) as env:
        [attempts] = creations
        await quota_of_pods(env.cluster, 0)
        await env.apply(shell_stage("a", "true"), workflow("wf", [{"name": "a"}]),
                        workflow_run("r1", "wf"))
        await env.wait_run("r1", lambda r: stage_status(r, "a").get("reason") == QUOTA_REFUSED)
        assert attempts.at == [0.0]

        async def next_attempt_after(wait: float) -> dict:
            """Hold the clock just short of `wait` past the last attempt: none is made. Then
            just past it: the engine's own timer makes exactly one."""
            tried = len(attempts.at)
            advance_to(clock, attempts.at[-1] + wait - 0.01)
            run = await env.looked_at("r1")
            assert len(attempts.at) == tried, f"retried {attempts.at[-1] - attempts.at[-2]:.2f}s" \
                f" after the last refusal, before its {wait}s backoff"
            assert stage_status(run, "a")["reason"] == QUOTA_REFUSED
            clock.advance(0.1)
            await eventually(lambda: len(attempts.at) == tried + 1)
            assert attempts.at[-1] - attempts.at[-2] == pytest.approx(wait, abs=0.1)
            return await env.looked_at("r1")

        for wait in (1, 2, 4, 4):
            run = await next_attempt_after(wait)
            assert stage_status(run, "a")["reason"] == QUOTA_REFUSED

        await quota_of_pods(env.cluster, 1)
        run = await next_attempt_after(4)
        for _ in range(3):
            # kube-apiserver admits by its own cache of quotas, which may trail their status
            if backend == "embedded" or stage_status(run, "a")["reason"] != QUOTA_REFUSED:
                break
            run = await next_attempt_after(4)
        assert stage_status(run, "a")["phase"] in ("Running", "Succeeded"), run["status"]
        run = await env.wait_phase("r1", "Succeeded")
        assert run["status"]["stages"]["a"]["attempts"] == 1


async def test_a_run_times_out_at_its_deadline_and_its_pods_are_deleted(tmp_path, backend):
    clock = ManualClock()
    async with running_env(tmp_path, backend=backend, clock=clock) as env:
        await env.apply(
            shell_stage("slow", f"until {Gate().check()}; do sleep 0.05; done"),
            workflow("wf", [{"name": "slow"}]),
            workflow_run("r1", "wf", timeout="10m"),
        )
        run = await env.wait_run("r1", lambda r: bool(
            ((r.get("status") or {}).get("stages") or {}).get("slow", {}).get("pod")))
        pod = run["status"]["stages"]["slow"]["pod"]["name"]
        for moment in (0, 599.9):
            advance_to(clock, moment)
            run = await env.looked_at("r1")
            assert overall(run)["phase"] == "Running", run["status"]
            [alive] = [p for p in await env.pods() if p["metadata"]["name"] == pod]
            assert not alive["metadata"].get("deletionTimestamp")
        advance_to(clock, 600.1)
        run = await env.wait_phase("r1", "Failed")
        assert (overall(run)["reason"], stage_status(run, "slow")["reason"]) == (
            "Timeout", "Timeout")

        async def pod_gone() -> bool:
            return all(p["metadata"]["name"] != pod for p in await env.pods())

        await eventually(pod_gone, timeout=30)


async def test_a_failed_attempt_is_retried_after_its_doubling_backoff(tmp_path, backend):
    clock = ManualClock()
    start = clock.now()
    async with running_env(tmp_path, backend=backend, clock=clock) as env:
        await env.apply(
            shell_stage("flaky", "exit 1", retries=2, retryBackoff="10s"),
            workflow("wf", [{"name": "flaky"}]),
            workflow_run("r1", "wf"),
        )

        async def attempts() -> int:
            return len(await env.pods(f"{keys.LABEL_STAGE}=flaky"))

        for attempt, backoff in ((1, 10), (2, 20)):
            run = await env.wait_run("r1", lambda r, n=attempt: retrying_after(r, n))
            failed = parse_rfc3339(stage_status(run, "flaky")["lastTransitionTime"])
            failed_at = (failed - start).total_seconds()
            assert failed_at <= clock.monotonic() < failed_at + 1
            tried = await attempts()
            advance_to(clock, failed_at + backoff - 0.1)
            run = await env.looked_at("r1")
            assert stage_status(run, "flaky")["reason"] == RETRYING
            assert await attempts() == tried, f"retried before its {backoff}s backoff"
            advance_to(clock, failed_at + backoff + 0.1)
            await eventually(lambda n=tried: more_than(attempts, n))
        run = await env.wait_phase("r1", "Failed")
        assert run["status"]["stages"]["flaky"]["attempts"] == 3
        assert await attempts() == 3


def retrying_after(run: dict, attempt: int) -> bool:
    entry = ((run.get("status") or {}).get("stages") or {}).get("flaky") or {}
    return entry.get("attempts") == attempt and (entry.get("status") or {}).get(
        "reason") == RETRYING


async def more_than(count, n: int) -> bool:
    return await count() > n
