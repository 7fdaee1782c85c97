"""Cron triggers on an engine running against the embedded cluster and a real
kube-apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.cron import cron_run_name, parse_schedule
from cyclone.engine.core.tenancy import record_patch
from cyclone.engine.core.timefmt import parse_rfc3339, rfc3339
from cyclone.engine.core.triggerrun import LABEL_TRIGGER
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
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
async def running_engine(cluster: EmbeddedCluster) -> AsyncIterator[Engine]:
    engine = Engine(cluster, EngineConfig(gc_enabled=False, watch_pod_events=False))
    task = asyncio.create_task(engine.run())
    try:
        await asyncio.wait_for(engine.ready.wait(), 10)
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def trigger_runs(cluster: EmbeddedCluster, trigger: str) -> list[dict]:
    listed = await cluster.list(kinds.WORKFLOW_RUN, NAMESPACE,
                                label_selector=f"{LABEL_TRIGGER}={trigger}")
    return sorted(listed.items, key=lambda r: r["metadata"]["name"])


async def wait_for(check: Callable, within: float = 10.0):
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


async def add_workflow(cluster: EmbeddedCluster, name: str = "wf", script: str = "true") -> None:
    await cluster.create(shell_stage(f"{name}-step", script))
    await cluster.create(workflow_object(name, [f"{name}-step"]))


async def test_six_field_trigger_fires_within_a_second_of_its_schedule(cluster):
    await add_workflow(cluster)
    await cluster.create(cron_trigger("every-second", "* * * * * *"))
    async with running_engine(cluster):
        runs = await wait_for(lambda: trigger_runs(cluster, "every-second"))
    run = runs[0]
    scheduled = int(run["metadata"]["name"].rsplit("-", 1)[1])
    created = parse_rfc3339(run["metadata"]["creationTimestamp"]).timestamp()
    assert 0 <= created - scheduled <= 1
    meta = run["metadata"]
    assert meta["annotations"][keys.ANNOTATION_WORKFLOWRUN_TRIGGER] == "cron-timer"
    assert meta["labels"][keys.LABEL_PROJECT] == "demo"
    assert run["spec"]["workflowRef"]["name"] == "wf"
    assert {"name": "MODE", "value": "nightly"} in run["spec"]["globalVariables"]
    assert "cron" not in run["spec"] and "type" not in run["spec"]
    trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, "every-second", NAMESPACE)
    fired = len(await trigger_runs(cluster, "every-second"))
    assert trigger["status"]["count"] == fired
    assert trigger["status"]["lastFireTime"] == rfc3339(
        datetime.fromtimestamp(max(int(r["metadata"]["name"].rsplit("-", 1)[1])
                                   for r in await trigger_runs(cluster, "every-second")), UTC))


async def test_restart_across_a_firing_neither_loses_nor_doubles_it(cluster):
    await add_workflow(cluster)
    await cluster.create(cron_trigger("ticker", "*/2 * * * * *"))
    async with running_engine(cluster):
        await wait_for(lambda: trigger_runs(cluster, "ticker"))
    before = {r["metadata"]["name"] for r in await trigger_runs(cluster, "ticker")}
    stopped_at = datetime.now(UTC)
    missed = parse_schedule("*/2 * * * * *").next_after(stopped_at)
    await asyncio.sleep(max((missed - datetime.now(UTC)).total_seconds(), 0) + 0.3)
    async with running_engine(cluster):
        await wait_for(lambda: _has(cluster, "ticker", cron_run_name("ticker", missed)))
        trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, "ticker", NAMESPACE)
    after = {r["metadata"]["name"] for r in await trigger_runs(cluster, "ticker")}
    assert before <= after
    new = after - before
    assert cron_run_name("ticker", missed) in new
    assert len(new) <= 2
    final = await cluster.get(kinds.WORKFLOW_TRIGGER, "ticker", NAMESPACE)
    assert final["status"]["count"] == len(after)
    assert trigger["status"]["count"] >= len(before) + 1


async def _has(cluster: EmbeddedCluster, trigger: str, name: str) -> bool:
    return name in {r["metadata"]["name"] for r in await trigger_runs(cluster, trigger)}


async def _set_last_fire(cluster: EmbeddedCluster, name: str, when: str, count: int) -> None:
    trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, name, NAMESPACE)
    trigger["status"] = {"count": count, "lastFireTime": when}
    await cluster.replace_status(trigger)


async def test_a_run_created_before_a_crash_is_recorded_not_created_again(cluster):
    await add_workflow(cluster)
    schedule = "0 0 1 * *"
    await cluster.create(cron_trigger("monthly", schedule))
    due = parse_schedule(schedule).latest_at_or_before(datetime.now(UTC))
    await _set_last_fire(cluster, "monthly", rfc3339(due.replace(year=due.year - 1)), 4)
    from cyclone.engine.core.triggerrun import trigger_run

    trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, "monthly", NAMESPACE)
    await cluster.create(trigger_run(trigger, cron_run_name("monthly", due), "cron-timer"))

    async def recorded():
        current = await cluster.get(kinds.WORKFLOW_TRIGGER, "monthly", NAMESPACE)
        return current if current["status"].get("lastFireTime") == rfc3339(due) else None

    async with running_engine(cluster):
        current = await wait_for(recorded)
        await asyncio.sleep(0.3)
        assert len(await trigger_runs(cluster, "monthly")) == 1
    assert current["status"]["count"] == 5


async def test_a_missed_schedule_fires_once_within_the_deadline_and_not_after(cluster):
    await add_workflow(cluster)
    schedule = "0 0 1 * *"
    due = parse_schedule(schedule).latest_at_or_before(datetime.now(UTC))
    await cluster.create(cron_trigger("late", schedule, startingDeadlineSeconds=60))
    await cluster.create(cron_trigger("lenient", schedule))
    long_ago = rfc3339(due.replace(year=due.year - 1))
    await _set_last_fire(cluster, "late", long_ago, 0)
    await _set_last_fire(cluster, "lenient", long_ago, 0)
    async with running_engine(cluster):
        await wait_for(lambda: trigger_runs(cluster, "lenient"))
        await asyncio.sleep(0.5)
        assert [r["metadata"]["name"] for r in await trigger_runs(cluster, "lenient")] == [
            cron_run_name("lenient", due)]
        assert await trigger_runs(cluster, "late") == []


async def test_disabled_trigger_and_missing_workflow_create_nothing(cluster):
    await cluster.create(cron_trigger("off", "* * * * * *", disabled=True))
    await cluster.create(cron_trigger("orphan", "* * * * * *", workflow_name="later"))
    async with running_engine(cluster):
        await asyncio.sleep(1.5)
        assert await trigger_runs(cluster, "off") == []
        assert await trigger_runs(cluster, "orphan") == []
        await add_workflow(cluster, "later")
        await wait_for(lambda: trigger_runs(cluster, "orphan"))
        assert await trigger_runs(cluster, "off") == []


async def test_forbid_waits_for_the_unfinished_run_and_replace_stops_it(cluster):
    await add_workflow(cluster, "slow", "sleep 60")
    await cluster.create(cron_trigger("forbid", "* * * * * *", "slow",
                                      concurrencyPolicy="Forbid"))
    await cluster.create(cron_trigger("replace", "* * * * * *", "slow",
                                      concurrencyPolicy="Replace"))
    async with running_engine(cluster):
        await wait_for(lambda: trigger_runs(cluster, "forbid"))
        replaced = await wait_for(lambda: _at_least(cluster, "replace", 2))
        await asyncio.sleep(1.2)
        assert len(await trigger_runs(cluster, "forbid")) == 1
    first = replaced[0]
    current = await cluster.get(kinds.WORKFLOW_RUN, first["metadata"]["name"], NAMESPACE)
    assert current["spec"].get("stopped") is True


async def _at_least(cluster: EmbeddedCluster, trigger: str, count: int) -> list[dict] | None:
    runs = await trigger_runs(cluster, trigger)
    return runs if len(runs) >= count else None


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
        await cluster.create(cron_trigger("placed", "* * * * * *"))
        async with running_engine(cluster):
            runs = await wait_for(lambda: trigger_runs(cluster, "placed"))
        assert runs[0]["spec"]["executionContext"] == {
            "cluster": name, "namespace": "cyclone-system-cron", "pvc": "cyclone-pvc-system"}
    finally:
        await cluster.delete(kinds.EXECUTION_CLUSTER, name)
