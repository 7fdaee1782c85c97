"""Cron triggers on an engine running against the embedded cluster and a real
kube-apiserver, on a clock that moves only when the test advances it.

A test stops the clock just before a scheduled time and has the cron controller look at the
trigger (`looked_at`): no run may exist yet. Then it moves the clock just past that time and
waits for the engine's own timer to fire the trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.cron import cron_run_name, parse_schedule
from cyclone.engine.core.tenancy import record_patch
from cyclone.engine.core.timefmt import parse_rfc3339, rfc3339
from cyclone.engine.core.triggerrun import LABEL_TRIGGER, trigger_run
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.kube.clock import ManualClock
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.protocol import Cluster

from .support import prepare_tenant, shell_stage, workflow_object

NAMESPACE = keys.tenant_namespace(keys.DEFAULT_TENANT)


def cron_trigger(name: str, schedule: str, workflow_name: str = "wf", **spec: object) -> dict:
    return {
        "apiVersion": keys.API_VERSION, "kind": "WorkflowTrigger",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {keys.LABEL_PROJECT: "demo"}},
        "spec": {"type": "Cron", "cron": {"schedule": schedule},
                 "workflowRef": {"kind": "Workflow", "name": workflow_name},
                 "parameters": [{"name": "MODE", "value": "nightly"}], **spec},
    }


@pytest.fixture(params=["embedded", pytest.param("kube", marks=pytest.mark.k8s)])
async def cluster(request, tmp_path) -> AsyncIterator[Cluster]:
    """The embedded store, or a clean tenant namespace on a real kube-apiserver."""
    if request.param == "kube":
        from support.kube_engine import engine_test_cluster

        async with engine_test_cluster(NAMESPACE, keys.tenant_pvc_name(keys.DEFAULT_TENANT)
                                       ) as remote:
            yield remote
        return
    embedded = EmbeddedCluster(tmp_path / "cluster.db", poll_interval=0.01)
    await embedded.start()
    await prepare_tenant(embedded)
    try:
        yield embedded
    finally:
        await embedded.close()


@contextlib.asynccontextmanager
async def running_engine(cluster: Cluster, clock: ManualClock) -> AsyncIterator[Engine]:
    engine = Engine(cluster, EngineConfig(gc_enabled=False, watch_pod_events=False),
                    clock=clock)
    task = asyncio.create_task(engine.run())
    try:
        await asyncio.wait_for(engine.ready.wait(), 30)
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def trigger_runs(cluster: Cluster, trigger: str) -> list[dict]:
    listed = await cluster.list(kinds.WORKFLOW_RUN, NAMESPACE,
                                label_selector=f"{LABEL_TRIGGER}={trigger}")
    return sorted(listed.items, key=lambda r: r["metadata"]["name"])


async def run_names(cluster: Cluster, trigger: str) -> list[str]:
    return [r["metadata"]["name"] for r in await trigger_runs(cluster, trigger)]


async def wait_for(check: Callable, within: float = 30.0):
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def _version(obj: dict | None) -> str | None:
    return (obj or {}).get("metadata", {}).get("resourceVersion")


async def looked_at(engine: Engine, cluster: Cluster, trigger: str) -> None:
    """Return once the cron controller has reconciled the trigger as stored, with its runs
    as stored: what a test finds afterwards is what the controller decided."""
    deadline = time.monotonic() + 30
    while True:
        stored = await cluster.get(kinds.WORKFLOW_TRIGGER, trigger, NAMESPACE)
        runs = await trigger_runs(cluster, trigger)
        if _version(engine.triggers.trigger_informer.get(NAMESPACE, trigger)) == _version(
                stored) and all(
                _version(engine.caches.runs.get(NAMESPACE, r["metadata"]["name"])) == _version(r)
                for r in runs):
            break
        assert time.monotonic() < deadline, f"the engine's caches never showed {trigger}"
        await asyncio.sleep(0.01)
    await engine.triggers.cron_controller.requeue_and_wait(f"{NAMESPACE}/{trigger}")


def advance_to(clock: ManualClock, moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())


async def recorded(cluster: Cluster, trigger: str, fired: datetime) -> dict | None:
    current = await cluster.get(kinds.WORKFLOW_TRIGGER, trigger, NAMESPACE)
    return current if (current.get("status") or {}).get("lastFireTime") == rfc3339(
        fired) else None


async def create_triggers(cluster: Cluster, *triggers: dict) -> datetime:
    """Create the triggers; the latest creation time, which a test starts its clock at."""
    created = [await cluster.create(t, namespace=NAMESPACE) for t in triggers]
    return max(parse_rfc3339(t["metadata"]["creationTimestamp"]) for t in created)


async def add_workflow(cluster: Cluster, name: str = "wf", script: str = "true") -> None:
    await cluster.create(shell_stage(f"{name}-step", script))
    await cluster.create(workflow_object(name, [f"{name}-step"]))


JUST = timedelta(milliseconds=10)


async def test_a_trigger_fires_at_each_scheduled_time_and_not_before(cluster):
    schedule = "*/10 * * * * *"
    await add_workflow(cluster)
    clock = ManualClock(start=await create_triggers(cluster, cron_trigger("ticker", schedule)))
    first = parse_schedule(schedule).next_after(clock.now())
    async with running_engine(cluster, clock) as engine:
        for due in (first, first + timedelta(seconds=10)):
            fired = await run_names(cluster, "ticker")
            advance_to(clock, due - JUST)
            await looked_at(engine, cluster, "ticker")
            assert await run_names(cluster, "ticker") == fired, f"fired before {due}"
            advance_to(clock, due + JUST)
            await wait_for(lambda d=due: _has(cluster, "ticker", cron_run_name("ticker", d)))
            trigger = await wait_for(lambda d=due: recorded(cluster, "ticker", d))
            assert trigger["status"]["count"] == len(fired) + 1
    runs = await trigger_runs(cluster, "ticker")
    assert [r["metadata"]["name"] for r in runs] == [
        cron_run_name("ticker", first), cron_run_name("ticker", first + timedelta(seconds=10))]
    meta = runs[0]["metadata"]
    assert meta["annotations"][keys.ANNOTATION_WORKFLOWRUN_TRIGGER] == "cron-timer"
    assert meta["labels"][keys.LABEL_PROJECT] == "demo"
    spec = runs[0]["spec"]
    assert spec["workflowRef"]["name"] == "wf"
    assert {"name": "MODE", "value": "nightly"} in spec["globalVariables"]
    assert "cron" not in spec and "type" not in spec


async def test_after_a_restart_only_the_latest_missed_time_fires_and_no_firing_doubles(
        cluster):
    schedule = "*/10 * * * * *"
    await add_workflow(cluster)
    clock = ManualClock(start=await create_triggers(cluster, cron_trigger("ticker", schedule)))
    first = parse_schedule(schedule).next_after(clock.now())
    async with running_engine(cluster, clock):
        advance_to(clock, first + JUST)
        await wait_for(lambda: recorded(cluster, "ticker", first))
    latest_missed = first + timedelta(seconds=30)
    back = ManualClock(start=latest_missed + timedelta(seconds=5))
    async with running_engine(cluster, back) as engine:
        trigger = await wait_for(lambda: recorded(cluster, "ticker", latest_missed))
        await looked_at(engine, cluster, "ticker")
        assert await run_names(cluster, "ticker") == [
            cron_run_name("ticker", first), cron_run_name("ticker", latest_missed)]
        assert trigger["status"]["count"] == 2
    again = ManualClock(start=back.now())
    async with running_engine(cluster, again) as engine:
        await looked_at(engine, cluster, "ticker")
        assert len(await run_names(cluster, "ticker")) == 2
        following = latest_missed + timedelta(seconds=10)
        advance_to(again, following + JUST)
        await wait_for(lambda: recorded(cluster, "ticker", following))
    assert await run_names(cluster, "ticker") == [
        cron_run_name("ticker", first), cron_run_name("ticker", latest_missed),
        cron_run_name("ticker", following)]
    final = await cluster.get(kinds.WORKFLOW_TRIGGER, "ticker", NAMESPACE)
    assert final["status"]["count"] == 3


async def _has(cluster: Cluster, trigger: str, name: str) -> bool:
    return name in await run_names(cluster, trigger)


async def _set_last_fire(cluster: Cluster, name: str, when: datetime, count: int) -> None:
    trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, name, NAMESPACE)
    trigger["status"] = {"count": count, "lastFireTime": rfc3339(when)}
    await cluster.replace_status(trigger)


MONTHLY = "0 0 1 * *"
FIRST_OF_MONTH = datetime(2030, 1, 1, tzinfo=UTC)
A_YEAR_BEFORE = datetime(2029, 1, 1, tzinfo=UTC)


async def test_a_run_created_before_a_crash_is_recorded_not_created_again(cluster):
    await add_workflow(cluster)
    await create_triggers(cluster, cron_trigger("monthly", MONTHLY))
    await _set_last_fire(cluster, "monthly", A_YEAR_BEFORE, 4)
    trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, "monthly", NAMESPACE)
    await cluster.create(trigger_run(trigger, cron_run_name("monthly", FIRST_OF_MONTH),
                                     "cron-timer"))
    clock = ManualClock(start=FIRST_OF_MONTH + timedelta(days=14))
    async with running_engine(cluster, clock) as engine:
        current = await wait_for(lambda: recorded(cluster, "monthly", FIRST_OF_MONTH))
        await looked_at(engine, cluster, "monthly")
        assert len(await trigger_runs(cluster, "monthly")) == 1
    assert current["status"]["count"] == 5


async def test_a_missed_time_fires_once_within_the_starting_deadline_and_not_after(cluster):
    await add_workflow(cluster)
    await create_triggers(
        cluster,
        cron_trigger("late", MONTHLY, startingDeadlineSeconds=59),
        cron_trigger("timely", MONTHLY, startingDeadlineSeconds=60),
        cron_trigger("lenient", MONTHLY),
    )
    for name in ("late", "timely", "lenient"):
        await _set_last_fire(cluster, name, A_YEAR_BEFORE, 0)
    clock = ManualClock(start=FIRST_OF_MONTH + timedelta(seconds=60))
    async with running_engine(cluster, clock) as engine:
        for name in ("timely", "lenient"):
            await wait_for(lambda n=name: recorded(cluster, n, FIRST_OF_MONTH))
        for name in ("late", "timely", "lenient"):
            await looked_at(engine, cluster, name)
        assert await run_names(cluster, "late") == []
        for name in ("timely", "lenient"):
            assert await run_names(cluster, name) == [cron_run_name(name, FIRST_OF_MONTH)]


async def test_disabled_trigger_and_missing_workflow_create_nothing(cluster):
    schedule = "* * * * * *"
    clock = ManualClock(start=await create_triggers(
        cluster,
        cron_trigger("off", schedule, workflow_name="later", disabled=True),
        cron_trigger("orphan", schedule, workflow_name="later"),
    ))
    due = parse_schedule(schedule).next_after(clock.now())
    async with running_engine(cluster, clock) as engine:
        advance_to(clock, due + JUST)
        for name in ("off", "orphan"):
            await looked_at(engine, cluster, name)
            assert await trigger_runs(cluster, name) == []
        await add_workflow(cluster, "later")
        await wait_for(lambda: _has(cluster, "orphan", cron_run_name("orphan", due)))
        await looked_at(engine, cluster, "off")
        assert await trigger_runs(cluster, "off") == []


async def test_forbid_waits_for_the_unfinished_run_and_replace_stops_it(cluster):
    schedule = "* * * * *"
    await add_workflow(cluster, "slow", "sleep 60")
    clock = ManualClock(start=await create_triggers(
        cluster,
        cron_trigger("forbid", schedule, "slow", concurrencyPolicy="Forbid"),
        cron_trigger("replace", schedule, "slow", concurrencyPolicy="Replace"),
    ))
    first = parse_schedule(schedule).next_after(clock.now())
    second = first + timedelta(minutes=1)
    async with running_engine(cluster, clock) as engine:
        advance_to(clock, first + JUST)
        for name in ("forbid", "replace"):
            await wait_for(lambda n=name: recorded(cluster, n, first))
        advance_to(clock, second + JUST)
        await wait_for(lambda: recorded(cluster, "replace", second))
        await looked_at(engine, cluster, "forbid")
        assert await run_names(cluster, "forbid") == [cron_run_name("forbid", first)]
        replaced = await cluster.get(kinds.WORKFLOW_RUN, cron_run_name("replace", first),
                                     NAMESPACE)
        assert replaced["spec"].get("stopped") is True
        assert await run_names(cluster, "replace") == [
            cron_run_name("replace", first), cron_run_name("replace", second)]

        await cluster.patch(kinds.WORKFLOW_RUN, cron_run_name("forbid", first),
                            {"spec": {"stopped": True}}, NAMESPACE)
        await wait_for(lambda: recorded(cluster, "forbid", second))
        assert await run_names(cluster, "forbid") == [
            cron_run_name("forbid", first), cron_run_name("forbid", second)]


async def test_cron_runs_execute_where_the_tenants_other_runs_do(cluster):
    """A cron run gets its execution context as REST and webhook runs do: the first cluster
    the tenant opened, as recorded on the ExecutionClusters."""
    name = f"cron-opened-{int(time.time() * 1000) % 100000}"
    opened = record_patch(None, keys.DEFAULT_TENANT, "0-cron", ("cyclone-system-cron",
                                                                 "cyclone-pvc-system"))
    await cluster.create({"apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
                          "metadata": {"name": name, **opened["metadata"]},
                          "spec": {"credential": {}}})
    try:
        await add_workflow(cluster)
        schedule = "* * * * * *"
        clock = ManualClock(start=await create_triggers(cluster,
                                                        cron_trigger("placed", schedule)))
        async with running_engine(cluster, clock):
            advance_to(clock, parse_schedule(schedule).next_after(clock.now()) + JUST)
            runs = await wait_for(lambda: trigger_runs(cluster, "placed"))
        assert runs[0]["spec"]["executionContext"] == {
            "cluster": name, "namespace": "cyclone-system-cron", "pvc": "cyclone-pvc-system"}
    finally:
        await cluster.delete(kinds.EXECUTION_CLUSTER, name)
