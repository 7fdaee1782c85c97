"""Every way a run is started (REST create, retry, an SCM delivery, a cron firing) gives it
the same execution context and refuses the same runs, on the embedded cluster and a real
kube-apiserver: the server app answers REST and webhooks, an engine on a ManualClock fires
cron triggers.

A refused REST call answers 403 or 422 naming the field; a refused trigger run is not
created and its trigger gets a Warning Event naming it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from cyclone.api import keys
from cyclone.engine.core.cron import cron_run_name, parse_schedule
from cyclone.engine.core.runstart import REASON_RUN_REFUSED
from cyclone.engine.core.scm import Provider
from cyclone.engine.core.tenancy import record_patch
from cyclone.engine.core.timefmt import parse_rfc3339
from cyclone.engine.core.triggerrun import LABEL_TRIGGER
from cyclone.kube import errors, kinds
from cyclone.kube.clock import ManualClock

from . import payloads as p
from .support import (
    NAMESPACE,
    PROJECT,
    WORKFLOW,
    create_integration,
    create_workflow,
    post_event,
    scm_trigger_object,
)
from .test_cron_engine import (
    JUST,
    add_workflow,
    advance_to,
    cron_trigger,
    looked_at,
    recorded,
    run_names,
    running_engine,
    wait_for,
)

HOME = {"cluster": keys.CONTROL_CLUSTER_NAME, "namespace": NAMESPACE,
        "pvc": keys.tenant_pvc_name(keys.DEFAULT_TENANT)}
OPENED = {"namespace": "cyclone-system-opened", "pvc": "cyclone-pvc-opened"}
NOT_OWNED = {"cluster": "someone-elses", "namespace": "their-namespace"}
RUNS_PATH = f"/projects/{PROJECT}/workflows/{WORKFLOW}/workflowruns"


@dataclass
class Started:
    """What one entry point did: the run it created, or why it refused."""

    run: dict | None
    refusal: str = ""


async def _runs(cluster, trigger: str | None = None) -> list[dict]:
    selector = f"{LABEL_TRIGGER}={trigger}" if trigger else None
    listed = await cluster.list(kinds.WORKFLOW_RUN, NAMESPACE, label_selector=selector)
    return listed.items


async def _refusal_events(cluster, trigger: str) -> str:
    """The messages of the trigger's RunRefused Events (of this trigger, not of an earlier
    one of the same name)."""
    uid = (await cluster.get(kinds.WORKFLOW_TRIGGER, trigger, NAMESPACE))["metadata"]["uid"]
    listed = await cluster.list(kinds.EVENT, NAMESPACE)
    return "\n".join(e.get("message", "") for e in listed.items
                     if e.get("reason") == REASON_RUN_REFUSED
                     and (e.get("involvedObject") or {}).get("uid") == uid)


async def _rest(admin, response) -> Started:
    if response.status_code == 201:
        return Started(response.json())
    return Started(None, f"{response.status_code} {response.json()['message']}")


async def start_by_rest_create(cluster, admin, spec: dict) -> Started:
    return await _rest(admin, await admin.post(RUNS_PATH, json={"spec": spec}))


async def start_by_retry(cluster, admin, spec: dict) -> Started:
    """A run stored as it was (by an older server, or edited since) is retried."""
    await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
        "metadata": {"name": "earlier", "namespace": NAMESPACE,
                     "labels": {keys.LABEL_PROJECT: PROJECT, keys.LABEL_WORKFLOW: WORKFLOW}},
        "spec": {"workflowRef": {"kind": "Workflow", "name": WORKFLOW}, **spec},
    }, namespace=NAMESPACE)
    started = await _rest(admin, await admin.post(f"{RUNS_PATH}/earlier/retry"))
    if started.run is None:
        assert [r["metadata"]["name"] for r in await _runs(cluster)] == ["earlier"]
    return started


async def start_by_webhook(cluster, admin, spec: dict) -> Started:
    await create_integration(admin, "gh", "GitHub")
    trigger = scm_trigger_object("on-push", "gh", "octo/app", push={"enabled": True})
    trigger["spec"].update(spec)
    await cluster.create(trigger, namespace=NAMESPACE)
    response = await post_event(admin, "gh", Provider.GITHUB, "push",
                                p.encode(p.github_push("main")))
    assert response.status_code == 200, response.text
    runs = await _runs(cluster, "on-push")
    assert [r["metadata"]["name"] for r in runs] == response.json()["workflowruns"]
    return Started(runs[0] if runs else None, await _refusal_events(cluster, "on-push"))


async def start_by_cron(cluster, admin, spec: dict) -> Started:
    schedule = "* * * * * *"
    trigger = cron_trigger("nightly", schedule, WORKFLOW, **spec)
    created = await cluster.create(trigger, namespace=NAMESPACE)
    clock = ManualClock(start=parse_rfc3339(created["metadata"]["creationTimestamp"]))
    due = parse_schedule(schedule).next_after(clock.now())
    async with running_engine(cluster, clock):
        advance_to(clock, due + JUST)

        async def fired() -> dict | None:
            current = await cluster.get(kinds.WORKFLOW_TRIGGER, "nightly", NAMESPACE)
            return current if (current.get("status") or {}).get("lastFireTime") else None

        recorded = await wait_for(fired)
    runs = await _runs(cluster, "nightly")
    assert recorded["status"].get("count", 0) == len(runs)
    return Started(runs[0] if runs else None, await _refusal_events(cluster, "nightly"))


ENTRY_POINTS = {"rest-create": start_by_rest_create, "retry": start_by_retry,
                "webhook": start_by_webhook, "cron": start_by_cron}


@pytest.fixture
async def workflow(cluster, admin) -> None:
    await cluster.create({"apiVersion": keys.API_VERSION, "kind": "Project",
                          "metadata": {"name": PROJECT, "namespace": NAMESPACE}, "spec": {}},
                         namespace=NAMESPACE)
    await create_workflow(cluster)


@contextlib.asynccontextmanager
async def opened_cluster(cluster) -> AsyncIterator[dict]:
    """An ExecutionCluster the default tenant opened; its execution context."""
    name = f"opened-{int(time.time() * 1000) % 10_000_000}"
    record = record_patch(None, keys.DEFAULT_TENANT, "0-first",
                          (OPENED["namespace"], OPENED["pvc"]))
    await cluster.create({"apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
                          "metadata": {"name": name, **record["metadata"]},
                          "spec": {"credential": {}}})
    try:
        yield {"cluster": name, **OPENED}
    finally:
        await cluster.delete(kinds.EXECUTION_CLUSTER, name)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_a_run_without_an_execution_context_goes_home(entry, cluster, admin, workflow):
    started = await ENTRY_POINTS[entry](cluster, admin, {})
    assert started.run is not None, started.refusal
    assert started.run["spec"]["executionContext"] == HOME


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_a_run_without_an_execution_context_goes_to_the_first_opened_cluster(
        entry, cluster, admin, workflow):
    async with opened_cluster(cluster) as context:
        started = await ENTRY_POINTS[entry](cluster, admin, {})
    assert started.run is not None, started.refusal
    assert started.run["spec"]["executionContext"] == context


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_a_run_keeps_the_execution_context_it_gives(entry, cluster, admin, workflow):
    async with opened_cluster(cluster):
        started = await ENTRY_POINTS[entry](cluster, admin, {"executionContext": HOME})
    assert started.run is not None, started.refusal
    assert started.run["spec"]["executionContext"] == HOME


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_a_run_in_an_execution_context_the_tenant_does_not_own_is_refused(
        entry, cluster, admin, workflow):
    started = await ENTRY_POINTS[entry](cluster, admin, {"executionContext": NOT_OWNED})
    assert started.run is None
    assert "spec.executionContext.cluster" in started.refusal
    assert "has not opened cluster 'someone-elses'" in started.refusal
    if entry in ("rest-create", "retry"):
        assert started.refusal.startswith("403 ")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_an_invalid_run_is_refused(entry, cluster, admin, workflow):
    started = await ENTRY_POINTS[entry](cluster, admin, {"timeout": "forever"})
    assert started.run is None
    assert "spec.timeout" in started.refusal
    assert "invalid duration 'forever'" in started.refusal
    if entry in ("rest-create", "retry"):
        assert started.refusal.startswith("422 ")


async def test_a_refused_cron_firing_stops_no_run_it_would_replace_and_is_not_counted(
        cluster, admin):
    """The refused firing is done with (``lastFireTime``), uncounted and not tried again; the
    next firing of the corrected trigger replaces the run as usual."""
    schedule = "* * * * *"
    await add_workflow(cluster, "slow", "sleep 60")
    created = await cluster.create(
        cron_trigger("replacer", schedule, "slow", concurrencyPolicy="Replace"),
        namespace=NAMESPACE)
    clock = ManualClock(start=parse_rfc3339(created["metadata"]["creationTimestamp"]))
    first = parse_schedule(schedule).next_after(clock.now())
    second, third = (first + timedelta(minutes=n) for n in (1, 2))
    async with running_engine(cluster, clock) as engine:
        advance_to(clock, first + JUST)
        await wait_for(lambda: recorded(cluster, "replacer", first))
        await cluster.patch(kinds.WORKFLOW_TRIGGER, "replacer",
                            {"spec": {"timeout": "forever"}}, NAMESPACE)
        await looked_at(engine, cluster, "replacer")
        advance_to(clock, second + JUST)
        refused = await wait_for(lambda: recorded(cluster, "replacer", second))
        assert refused["status"]["count"] == 1
        assert await run_names(cluster, "replacer") == [cron_run_name("replacer", first)]
        kept = await cluster.get(kinds.WORKFLOW_RUN, cron_run_name("replacer", first),
                                 NAMESPACE)
        assert not kept["spec"].get("stopped")
        assert "spec.timeout" in await _refusal_events(cluster, "replacer")

        await cluster.patch(kinds.WORKFLOW_TRIGGER, "replacer", {"spec": {"timeout": None}},
                            NAMESPACE)
        await looked_at(engine, cluster, "replacer")
        assert await run_names(cluster, "replacer") == [cron_run_name("replacer", first)]
        advance_to(clock, third + JUST)
        fired = await wait_for(lambda: recorded(cluster, "replacer", third))
    assert fired["status"]["count"] == 2
    assert await run_names(cluster, "replacer") == [cron_run_name("replacer", first),
                                                    cron_run_name("replacer", third)]
    replaced = await cluster.get(kinds.WORKFLOW_RUN, cron_run_name("replacer", first),
                                 NAMESPACE)
    assert replaced["spec"].get("stopped") is True


@pytest.mark.parametrize("entry", ENTRY_POINTS)
async def test_a_run_no_stage_of_its_workflow_fits_is_refused(entry, cluster, admin, workflow):
    started = await ENTRY_POINTS[entry](cluster, admin, {"startStages": ["nope"]})
    assert started.run is None
    assert 'spec.startStages[0]: unknown stage "nope"' in started.refusal
    if entry in ("rest-create", "retry"):
        assert started.refusal.startswith("422 ")


async def test_a_refused_delivery_delivered_again_is_answered_alike_and_told_once(
        cluster, admin, workflow):
    await create_integration(admin, "gh", "GitHub")
    trigger = scm_trigger_object("on-push", "gh", "octo/app", push={"enabled": True})
    trigger["spec"]["timeout"] = "forever"
    await cluster.create(trigger, namespace=NAMESPACE)
    for _ in range(2):
        response = await post_event(admin, "gh", Provider.GITHUB, "push",
                                    p.encode(p.github_push("main")))
        assert response.status_code == 200, response.text
        assert (response.json()["workflowruns"], response.json()["existing"]) == ([], [])
    told = await _refusal_events(cluster, "on-push")
    assert len(told.splitlines()) == 1 and "spec.timeout" in told
    assert await _runs(cluster, "on-push") == []


class EventsRefused:
    """The cluster as a deployment sees it whose role may not create Events."""

    def __init__(self, cluster) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str):
        return getattr(self._cluster, name)

    async def create(self, obj: dict, *, namespace: str | None = None) -> dict:
        if obj.get("kind") == "Event":
            raise errors.Forbidden('events is forbidden: cannot create resource "events"')
        return await self._cluster.create(obj, namespace=namespace)


async def test_a_refused_cron_firing_is_recorded_when_its_event_cannot_be_written(
        cluster, admin):
    await add_workflow(cluster)
    schedule = "* * * * * *"
    created = await cluster.create(cron_trigger("ticker", schedule, timeout="forever"),
                                   namespace=NAMESPACE)
    clock = ManualClock(start=parse_rfc3339(created["metadata"]["creationTimestamp"]))
    due = parse_schedule(schedule).next_after(clock.now())
    async with running_engine(EventsRefused(cluster), clock):
        advance_to(clock, due + JUST)
        fired = await wait_for(lambda: recorded(cluster, "ticker", due), within=10)
    assert fired["status"].get("count", 0) == 0
    assert await run_names(cluster, "ticker") == []
    assert await _refusal_events(cluster, "ticker") == ""
