"""Every Cyclone object the engine and the server write during a set of end-to-end flows.

The flows run on the embedded cluster, which stores objects whole: what comes back from a
write is everything the writer meant to store, fields missing from the CRD schema included.
`WriteRecorder` is the cluster as the engine (and the server functions the flows call) see
it, and keeps the object each write stored. Between them the flows make the engine write
every field it has: outputs, pod, events, attempts of a retried stage, a trivial failure,
delegation (url, deadline, sent) and its reported outputs, depends, deadline, queued,
notifications, dataRemoved and cleaned, completionTime, stages reused by a retryOf run,
the quota refusals of a stage's pod,
cancellation by the server and by spec.stopped, a cron trigger's count and lastFireTime
and the run it starts, runs the server starts for pull request deliveries (and cancels when
the pull request moves on), ExecutionCluster status, and the server's built-in Stages and
Resources.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
from pathlib import Path

from engine.gates import Gate
from engine.harness import (
    API,
    NAMESPACE,
    Env,
    allow_local_addresses,
    overall,
    running_env,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)
from engine.receiver import http_receiver

from cyclone.api import keys
from cyclone.engine.config import EngineConfig, QueueLimits
from cyclone.engine.core.scm.events import EventType, Provider, ScmEvent
from cyclone.kube import kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.builtins import ensure_builtins
from cyclone.server.delegation import report_delegation_result
from cyclone.server.webhooks.cancel import cancel_run
from cyclone.server.webhooks.starter import Delivery, count_firing, start_runs

WITHIN = 60.0


class WriteRecorder:
    """The cluster, keeping a copy of every ``cyclone.dev`` object a write through it stored."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self.stored: list[dict] = []

    def __getattr__(self, name: str):
        return getattr(self._cluster, name)

    def _keep(self, stored: dict) -> dict:
        if stored.get("apiVersion") == keys.API_VERSION:
            self.stored.append(copy.deepcopy(stored))
        return stored

    async def create(self, obj: dict, *, namespace: str | None = None) -> dict:
        return self._keep(await self._cluster.create(obj, namespace=namespace))

    async def replace(self, obj: dict) -> dict:
        return self._keep(await self._cluster.replace(obj))

    async def replace_status(self, obj: dict) -> dict:
        return self._keep(await self._cluster.replace_status(obj))

    async def patch(self, *args, **kwargs) -> dict:
        return self._keep(await self._cluster.patch(*args, **kwargs))


def _gated(gate: Gate, then: str = "true") -> str:
    return f"until {gate.check()}; do sleep 0.05; done; {then}"


async def _until(env: Env, name: str, check, what: str) -> dict:
    try:
        return await env.wait_run(name, check, WITHIN)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {exc}") from None


async def _rich_run(env: Env, server: WriteRecorder, gate: Gate) -> None:
    """Outputs, a warning event, a retried trivial failure, a delegation reported with
    outputs, depends, a timeout, a webhook notification, GC, and a retry of the run that
    reuses its Succeeded stages."""
    async with http_receiver() as receiver:
        await env.apply(
            shell_stage("out", _gated(gate, "echo color:blue > /cyclone/results/__result__")),
            shell_stage("flaky", "exit 3", retries=1, retryBackoff="0s"),
            {"apiVersion": API, "kind": "Stage",
             "metadata": {"name": "approve", "namespace": NAMESPACE},
             "spec": {"delegation": {"type": "approval", "url": receiver.url,
                                     "timeout": "1h"}}},
            shell_stage("after", "true"),
            workflow("rich", [{"name": "out"}, {"name": "flaky", "trivial": True},
                              {"name": "approve"},
                              {"name": "after", "depends": ["out", "approve"]}],
                     notification={"policy": "Always", "receivers": [
                         {"type": "Webhook", "addresses": [receiver.url]}]}),
            workflow_run("rich-1", "rich", timeout="10m"),
        )
        run = await _until(env, "rich-1", lambda r: bool(
            ((r.get("status") or {}).get("stages") or {}).get("out", {}).get("pod")),
            "stage out never got its pod")
        pod = run["status"]["stages"]["out"]["pod"]["name"]
        await env.cluster.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{pod}.warning", "namespace": NAMESPACE},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": NAMESPACE},
            "type": "Warning", "reason": "FailedMount", "message": "volume not ready",
            "count": 2, "lastTimestamp": "2026-01-01T00:00:00Z",
        })
        await _until(env, "rich-1", lambda r: bool(r["status"]["stages"]["out"].get("events")),
                     "the warning event never reached the stage")
        request = (await receiver.wait_for(1, WITHIN))[0]
        await _until(env, "rich-1", lambda r: stage_status(r, "flaky").get("phase") == "Failed",
                     "the flaky stage never failed for good")
        await report_delegation_result(server, NAMESPACE, "rich-1", "approve",
                                       request["token"], True, "approved",
                                       {"approver": "alice"})
        gate.touch()
        await _until(env, "rich-1", lambda r: bool((r.get("status") or {}).get("cleaned")),
                     "the rich run was never cleaned")
        await receiver.wait_for(2, WITHIN)
        await env.apply(workflow_run("rich-2", "rich", retryOf="rich-1"))
        await _until(env, "rich-2", lambda r: overall(r).get("phase") == "Succeeded",
                     "the retry of the rich run never succeeded")


async def _queued_and_cancelled_runs(env: Env, server: WriteRecorder, gate: Gate) -> None:
    """A run queued behind another of its workflow, cancelled by the server; the other
    stopped through spec.stopped."""
    await env.apply(
        shell_stage("hold", _gated(gate)),
        workflow("held", [{"name": "hold"}]),
        workflow_run("held-1", "held"),
        workflow_run("held-2", "held"),
    )
    await _until(env, "held-2", lambda r: (r.get("status") or {}).get("queued") is True,
                 "the second run never queued")
    await _until(env, "held-1", lambda r: stage_status(r, "hold").get("phase") == "Running",
                 "the first run never started")
    assert await cancel_run(server, NAMESPACE, "held-2", "ScmPullRequestSuperseded",
                            "a newer commit of the pull request")
    await server.patch(kinds.WORKFLOW_RUN, "held-1", {"spec": {"stopped": True}}, NAMESPACE)
    for name in ("held-1", "held-2"):
        await _until(env, name, lambda r: overall(r).get("phase") == "Cancelled",
                     f"{name} was never cancelled")


async def _cron_trigger(env: Env, server: WriteRecorder) -> None:
    """A cron trigger that fires every second, its run, and a firing the server counts."""
    await env.apply(
        shell_stage("tick", "true"),
        workflow("ticking", [{"name": "tick"}]),
        {"apiVersion": API, "kind": "WorkflowTrigger",
         "metadata": {"name": "every-second", "namespace": NAMESPACE},
         "spec": {"type": "Cron", "cron": {"schedule": "* * * * * *"},
                  "workflowRef": {"kind": "Workflow", "name": "ticking"},
                  "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 60,
                  "parameters": [{"name": "MODE", "value": "nightly"}]}},
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN
    while True:
        trigger = await env.cluster.get(kinds.WORKFLOW_TRIGGER, "every-second", NAMESPACE)
        if (trigger.get("status") or {}).get("lastFireTime"):
            break
        assert loop.time() < deadline, f"the trigger never fired: {trigger.get('status')}"
        await asyncio.sleep(0.05)
    await server.patch(kinds.WORKFLOW_TRIGGER, "every-second", {"spec": {"disabled": True}},
                       NAMESPACE)
    await count_firing(server, trigger)


async def _pull_request_deliveries(env: Env, server: WriteRecorder) -> None:
    """Two deliveries of one pull request to an SCM trigger: the server starts a run for
    each (with the event's revision in its resources) and cancels the first for the
    second."""
    await env.apply(
        shell_stage("check", "true"),
        workflow("checks", [{"name": "check"}]),
        {"apiVersion": API, "kind": "WorkflowTrigger",
         "metadata": {"name": "on-pr", "namespace": NAMESPACE},
         "spec": {"type": "SCM", "workflowRef": {"kind": "Workflow", "name": "checks"},
                  "scm": {"secret": "github", "repo": "org/repo",
                          "pullRequest": {"enabled": True}},
                  "resources": [{"name": "src"}]}},
    )
    trigger = await env.cluster.get(kinds.WORKFLOW_TRIGGER, "on-pr", NAMESPACE)
    runs = []
    for commit in ("c1", "c2"):
        event = ScmEvent(Provider.GITHUB, EventType.PULL_REQUEST, "org/repo",
                         "refs/pull/7/head:main", branch="main", commit=commit,
                         pull_request=7)
        delivery = Delivery(keys.DEFAULT_TENANT, "github", f"delivery-{commit}", [event],
                            "http://127.0.0.1:7099")
        outcome = await start_runs(server, [trigger], delivery)
        assert len(outcome.created) == 1, outcome
        runs += outcome.created
    for name in runs:
        await _until(env, name, lambda r: overall(r).get("phase") in ("Succeeded", "Cancelled"),
                     f"the pull request run {name} never ended")


async def _execution_cluster_status(env: Env) -> None:
    """The engine's own cluster as an ExecutionCluster, which the engine reports on."""
    await env.apply({"apiVersion": API, "kind": "ExecutionCluster",
                     "metadata": {"name": keys.CONTROL_CLUSTER_NAME},
                     "spec": {"credential": {}}})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN
    while not (await env.cluster.get(kinds.EXECUTION_CLUSTER, keys.CONTROL_CLUSTER_NAME)
               ).get("status"):
        assert loop.time() < deadline, "the engine never reported on its own cluster"
        await asyncio.sleep(0.05)


async def _quota_refusal(env: Env) -> None:
    """A stage's pod refused for quota (its refusals counted in the run) until the quota
    goes; run once no other flow needs a pod."""
    await env.cluster.create({"apiVersion": "v1", "kind": "ResourceQuota",
                              "metadata": {"name": "no-pods", "namespace": NAMESPACE},
                              "spec": {"hard": {"pods": "0"}}}, namespace=NAMESPACE)
    await env.apply(shell_stage("capped", "true"), workflow("capped", [{"name": "capped"}]),
                    workflow_run("capped-1", "capped"))
    await _until(env, "capped-1", lambda r: bool(
        ((r.get("status") or {}).get("stages") or {}).get("capped", {}).get("quotaRefusals")),
        "stage capped was never refused for quota")
    await env.cluster.delete(kinds.RESOURCE_QUOTA, "no-pods", NAMESPACE)
    await _until(env, "capped-1", lambda r: overall(r).get("phase") == "Succeeded",
                 "run capped-1 did not succeed once the quota was gone")


async def record_flows(data_dir: Path) -> list[dict]:
    """Run the flows on a fresh embedded cluster; every Cyclone object written, in order."""
    recorders: list[WriteRecorder] = []

    def engine_sees(cluster: Cluster) -> Cluster:
        recorders.append(WriteRecorder(cluster))
        return recorders[-1]

    config = EngineConfig(
        gc_delay_seconds=0, gc_log_wait_seconds=0, watch_pod_events=True,
        per_workflow=QueueLimits(max_running=1, max_queued=5), cluster_status_seconds=0.1,
    )
    async with running_env(data_dir, config, engine_sees=engine_sees) as env:
        [engine] = recorders
        server = WriteRecorder(env.cluster)
        await allow_local_addresses(env.cluster)
        await ensure_builtins(server)
        gates = (Gate(), Gate())
        try:
            await asyncio.gather(
                _rich_run(env, server, gates[0]),
                _queued_and_cancelled_runs(env, server, gates[1]),
                _cron_trigger(env, server), _pull_request_deliveries(env, server),
                _execution_cluster_status(env))
            await _quota_refusal(env)
        finally:
            for gate in gates:  # a container still waiting on one ends
                gate.touch()
    return [*engine.stored, *server.stored]


_recorded: list[tuple[dict, ...]] = []


def written_objects(data_dir: Path) -> tuple[dict, ...]:
    """`record_flows` once per test process, in a thread of its own so that sync and async
    tests alike can ask (the objects are shared: do not change them)."""
    if not _recorded:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            _recorded.append(tuple(pool.submit(asyncio.run, record_flows(data_dir)).result()))
    return _recorded[0]
