"""The engine is SIGKILLed while finished runs are notified and collected, at chosen points
(after a side effect, before the write that records it) and at random ones. Each receiver
address still gets one delivery per run (a repeat only after a crash between sending and
recording it, with the same delivery id), each run gets one GC pod, and every run ends
notified, cleaned and without a pod left. n-4 is deleted once notified, before its GC
delay has passed, so it is collected by the finalizer.

n-1 ends only once every other kill has happened, so nothing but its own crash point,
placed after its notifications were recorded, kills the engine around it: its run is
changed while it is notified, and the engine must not send again after the Conflict."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import defaultdict

import pytest

from cyclone.api import keys
from cyclone.engine.core.names import gc_pod_name
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound

from .crash_kit import (
    CrashPoint,
    Engines,
    Kill,
    Ledger,
    engine_target,
    note_post,
    unexplained_repeats,
)
from .gates import Gate
from .harness import (
    BACKENDS,
    NAMESPACE,
    allow_local_addresses,
    overall,
    running_env,
    shell_stage,
    workflow,
    workflow_run,
)
from .receiver import http_receiver

RANDOM_KILLS = 3
ENDS = {"n-0": "Succeeded", "n-1": "Succeeded", "n-2": "Succeeded", "n-3": "Failed",
        "n-4": "Succeeded"}
WORKFLOWS = {"n-0": "notified", "n-1": "held", "n-2": "notified", "n-3": "broken",
             "n-4": "notified"}
PATHS = ("a", "b")
CONFIG = {"gc_enabled": True, "gc_delay_seconds": 2, "gc_log_wait_seconds": 0,
          "watch_pod_events": False, "http_timeout_seconds": 30, "workers": 1}
"""One worker: a crash point's write is never followed by another write whose crash point
the kill would then skip."""


def cleaned(run: dict) -> bool:
    return bool((run.get("status") or {}).get("cleaned"))


async def deleted_once_notified(env, run: str, within: float = 150.0) -> dict:
    """Delete `run` once its notifications are recorded; its last state when it is gone."""
    seen = await env.wait_run(run, lambda r: len((r.get("status") or {}).get(
        "notifications") or {}) == len(PATHS), within=within)
    await env.cluster.delete(kinds.WORKFLOW_RUN, run, NAMESPACE)
    deadline = time.monotonic() + within
    while True:
        try:
            seen = await env.run(run)
        except NotFound:
            return seen
        assert time.monotonic() < deadline, f"{run} was never released: {seen}"
        await asyncio.sleep(0.05)


class Notifications:
    """The receivers: every POST recorded; n-0's first POST to /a is held while the engine
    is killed, n-1's while the run is changed under the engine (its record then meets a
    Conflict)."""

    def __init__(self, env, receiver, timeline: list) -> None:
        self.env, self.receiver, self.timeline = env, receiver, timeline
        self.engines: Engines | None = None
        self.deliveries: dict[tuple, list[str | None]] = defaultdict(list)

    async def on_request(self, index: int) -> None:
        request_line, _ = self.receiver.raw[index]
        path = request_line.split()[1].rsplit("/", 1)[-1]
        key = (self.receiver.bodies[index]["metadata"]["name"], path)
        note_post(self.timeline, key, self.receiver.headers[index].get("x-cyclone-delivery"),
                  self.receiver.senders_gone[index])
        self.deliveries[key].append(self.receiver.headers[index].get("x-cyclone-delivery"))
        if len(self.deliveries[key]) > 1:
            return
        if key == ("n-0", "a"):
            assert self.engines is not None
            await self.engines.kill("n-0: POST to a sent, not recorded")
        elif key == ("n-1", "a"):
            await self.env.cluster.patch(kinds.WORKFLOW_RUN, "n-1", {"metadata": {
                "annotations": {"changed": "while notifying"}}}, NAMESPACE)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_finished_runs_are_notified_and_collected_once_however_the_engine_is_killed(
        tmp_path, backend):
    seed = int(os.environ.get("CYCLONE_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    timeline: list = []
    ledger = Ledger()
    async with (http_receiver() as receiver,
                running_env(tmp_path, with_engine=False, backend=backend) as env,
                ledger.following(env.cluster, NAMESPACE)):
        await allow_local_addresses(env.cluster)
        addresses = [f"{receiver.url}/{path}" for path in PATHS]
        notification = {"policy": "Always",
                        "receivers": [{"type": "Webhook", "addresses": addresses}]}
        gate = Gate()
        await env.apply(
            shell_stage("work", "true"),
            shell_stage("fail", "exit 1"),
            shell_stage("wait", f"until {gate.check()}; do sleep 0.05; done"),
            workflow("notified", [{"name": "work"}], notification=notification),
            workflow("held", [{"name": "wait"}], notification=notification),
            workflow("broken", [{"name": "fail"}], notification=notification),
        )
        uids = {}
        for run, workflow_name in WORKFLOWS.items():
            created = await env.cluster.create(workflow_run(run, workflow_name))
            uids[run] = created["metadata"]["uid"]

        def notified(run: str) -> tuple[tuple, ...]:
            """A point after these deliveries were recorded (GC starts after that)."""
            return tuple((run, path) for path in PATHS)

        n1_gc = CrashPoint("n-1: GC pod deleted, cleaned not written", "delete", "Pod",
                           gc_pod_name("n-1"), recorded=notified("n-1"))
        points = [
            CrashPoint("n-2: notifications recorded", "patch", "WorkflowRun", "n-2",
                       '"notifications"', recorded=notified("n-2")),
            CrashPoint("n-0: data removal recorded, GC pod not deleted", "patch",
                       "WorkflowRun", "n-0", '"dataRemoved":true', recorded=notified("n-0")),
            n1_gc,
            CrashPoint("n-2: GC pod created", "create", "Pod", gc_pod_name("n-2"),
                       recorded=notified("n-2")),
            CrashPoint("n-3: a stage pod deleted by GC, no GC pod yet", "delete", "Pod",
                       "broken-fail-*", f'"{keys.LABEL_WORKFLOWRUN}":"n-3"',
                       recorded=notified("n-3")),
            CrashPoint("n-4: deleted, its GC pod deleted, finalizer not removed", "delete",
                       "Pod", gc_pod_name("n-4"), recorded=notified("n-4")),
        ]

        async def end_n1_alone(engines: Engines, others: list[asyncio.Task]) -> None:
            for point in points:
                if point is not n1_gc:
                    await point.hit.wait()
            await asyncio.wait(others)
            await engines.end_random_kills()
            gate.touch()

        notifications = Notifications(env, receiver, timeline)
        receiver.on_request = notifications.on_request
        random_writes = [rng.randint(1, 12) for _ in range(RANDOM_KILLS)]
        async with Engines(engine_target(env), tmp_path, CONFIG, points, timeline,
                           random_writes) as engines:
            notifications.engines = engines
            async with asyncio.TaskGroup() as group:
                ended = {run: group.create_task(env.wait_run(run, cleaned, within=150))
                         for run in ENDS if run != "n-4"}
                ended["n-4"] = group.create_task(deleted_once_notified(env, "n-4"))
                group.create_task(end_n1_alone(
                    engines, [task for run, task in ended.items() if run != "n-1"]))
        receiver.on_request = None
        left = await env.pods()

    context = f"seed {seed}, kills {[k.label for k in timeline if isinstance(k, Kill)]}"
    assert engines.deaths == [], context
    assert engines.unreached() == [], context
    for run, phase in ENDS.items():
        status = ended[run].result()["status"]
        assert overall(ended[run].result())["phase"] == phase, (run, context)
        assert run == "n-4" or status["dataRemoved"] is True, (run, context)
        assert {address: entry["result"] for address, entry in
                status["notifications"].items()} == dict.fromkeys(addresses, "Succeeded")
        for path, address in zip(PATHS, addresses, strict=True):
            assert set(notifications.deliveries[(run, path)]) == {f"{uids[run]}:{address}"}, (
                run, path, notifications.deliveries, context)
        assert len(ledger.pods[gc_pod_name(run)]) == 1, (run, ledger.pods, context)
    assert unexplained_repeats(timeline) == [], context
    assert len(notifications.deliveries[("n-0", "a")]) >= 2, context
    assert len(notifications.deliveries[("n-1", "a")]) == 1, context
    assert left == [], ([p["metadata"]["name"] for p in left], context)
