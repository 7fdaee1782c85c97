"""The engine is SIGKILLed while stages wait on a delegation, are retried or are stopped,
both at chosen points (after a side effect, before the write that records it) and at random
ones. Each side effect still happens once: one delegation POST per stage (a repeat only
after a crash between sending and recording it, with the same delivery id), one pod per
attempt, no pod after a stop and none left running; and every run ends as it should.

d-1 reaches its delegation only once every other kill has happened, so nothing but its
own crash point, placed after its POST was recorded, kills the engine around it: a second
POST for it would be one no crash explains."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import defaultdict

import pytest

from cyclone.api import keys
from cyclone.engine.core.podbuilder import ANNOTATION_ATTEMPT
from cyclone.kube import kinds
from cyclone.server.delegation import report_delegation_result

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
    delegation_stage,
    overall,
    running_env,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)
from .receiver import http_receiver

RANDOM_KILLS = 3
ENDS = {"d-0": "Succeeded", "d-1": "Succeeded", "d-2": "Succeeded", "f-0": "Succeeded",
        "b-0": "Failed", "h-0": "Cancelled", "h-1": "Cancelled"}
WORKFLOWS = {"d-0": "approval", "d-1": "held-approval", "d-2": "approval", "f-0": "retry",
             "b-0": "broken", "h-0": "halt", "h-1": "halt"}
ATTEMPTS = {"f-0": ("flaky", 3), "b-0": ("broken", 2)}
CONFIG = {"gc_enabled": False, "watch_pod_events": False, "http_timeout_seconds": 30,
          "workers": 1}
"""One worker: a crash point's write is never followed by another write whose crash point
the kill would then skip."""


def flaky_stage() -> dict:
    """Fails its first two attempts: the attempt number comes from its pod's annotation."""
    stage = shell_stage("flaky", '[ "$ATTEMPT" -ge 3 ]', retries=3, retryBackoff="10ms")
    stage["spec"]["pod"]["spec"]["containers"][0]["env"] = [{
        "name": "ATTEMPT", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{ANNOTATION_ATTEMPT}']"}}}]
    return stage


def objects(url: str, gate: Gate) -> list[dict]:
    return [
        delegation_stage("approve", url),
        shell_stage("wait", f"until {gate.check()}; do sleep 0.05; done"),
        shell_stage("ship", "true"),
        flaky_stage(),
        shell_stage("broken", "exit 1", retries=1, retryBackoff="10ms"),
        shell_stage("hold", "while true; do sleep 0.1; done"),
        shell_stage("after", "true"),
        workflow("approval", [{"name": "approve"}, {"name": "ship", "depends": ["approve"]}]),
        workflow("held-approval", [{"name": "wait"}, {"name": "approve", "depends": ["wait"]},
                                   {"name": "ship", "depends": ["approve"]}]),
        workflow("retry", [{"name": "flaky"}]),
        workflow("broken", [{"name": "broken"}]),
        workflow("halt", [{"name": "hold"}, {"name": "after", "depends": ["hold"]}]),
    ]


class Delegations:
    """The outside system: records every POST and answers each delivery once, through the
    server's `report_delegation_result` (d-1 only after its pause, d-0 only when the
    engine killed while its first POST was in flight sends it again)."""

    def __init__(self, env, receiver, timeline: list) -> None:
        self.env, self.receiver, self.timeline = env, receiver, timeline
        self.engines: Engines | None = None
        self.deliveries: dict[tuple, list[str | None]] = defaultdict(list)
        self.tokens: dict[tuple, str] = {}
        self.answers: list[asyncio.Task] = []

    async def on_request(self, index: int) -> None:
        body, headers = self.receiver.bodies[index], self.receiver.headers[index]
        key = (body["workflowrun"], body["stage"])
        delivery = headers.get("x-cyclone-delivery")
        note_post(self.timeline, key, delivery, self.receiver.senders_gone[index])
        self.deliveries[key].append(delivery)
        self.tokens[key] = body["token"]
        count = len(self.deliveries[key])
        if key[0] == "d-0" and count == 1:
            assert self.engines is not None
            await self.engines.kill("d-0: POST sent, not recorded")
        elif key[0] != "d-1" and (count == 1 or (key[0] == "d-0" and count == 2)):
            self.answers.append(asyncio.create_task(self.answer(key)))

    async def answer(self, key: tuple) -> None:
        await report_delegation_result(self.env.cluster, NAMESPACE, key[0], key[1],
                                       self.tokens[key], True, "approved")


async def stop(env, run: str) -> None:
    await env.cluster.patch(kinds.WORKFLOW_RUN, run, {"spec": {"stopped": True}}, NAMESPACE)


async def pause(env, run: str, paused: bool) -> None:
    await env.cluster.patch(kinds.WORKFLOW_RUN, run, {"spec": {"paused": paused}}, NAMESPACE)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_stage_side_effects_happen_once_however_the_engine_is_killed(tmp_path, backend):
    seed = int(os.environ.get("CYCLONE_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    timeline: list = []
    ledger = Ledger()
    async with (http_receiver() as receiver,
                running_env(tmp_path, with_engine=False, backend=backend) as env,
                ledger.following(env.cluster, NAMESPACE)):
        await allow_local_addresses(env.cluster)
        gate = Gate()
        await env.apply(*objects(receiver.url, gate))
        uids = {}
        for run in ENDS:
            created = await env.cluster.create(workflow_run(run, WORKFLOWS[run]))
            uids[run] = created["metadata"]["uid"]

        d1_recorded = CrashPoint(
            "d-1: POST recorded", "patch", "WorkflowRun", "d-1", '"sent":true',
            then=lambda: pause(env, "d-1", True), recorded=(("d-1", "approve"),))
        points = [
            CrashPoint("d-2: Waiting stored, not yet POSTed", "patch", "WorkflowRun", "d-2",
                       '"sent":false'),
            d1_recorded,
            CrashPoint("f-0: attempt 2's pod created, not recorded", "create", "Pod",
                       "retry-flaky-*", f'"{ANNOTATION_ATTEMPT}":"2"'),
            CrashPoint("b-0: attempt 2's pod recorded", "patch", "WorkflowRun", "b-0",
                       '"attempts":2'),
            CrashPoint("h-1: pod created, not recorded (then stopped)", "create", "Pod",
                       "halt-hold-*", f'"{keys.LABEL_WORKFLOWRUN}":"h-1"',
                       then=lambda: stop(env, "h-1")),
            CrashPoint("h-0: stopped and its pod deleted, Cancelled not written", "delete",
                       "Pod", "halt-hold-*", f'"{keys.LABEL_WORKFLOWRUN}":"h-0"'),
        ]
        delegations = Delegations(env, receiver, timeline)
        receiver.on_request = delegations.on_request

        async def stop_h0() -> None:
            await env.wait_run("h-0", lambda r: stage_status(r, "hold").get("phase") == "Running"
                               and bool(r["status"]["stages"]["hold"].get("pod")), within=150)
            await stop(env, "h-0")

        async def start_d1_alone(engines: Engines) -> None:
            for point in points:
                if point is not d1_recorded:
                    await point.hit.wait()
            for run in ENDS:
                if run != "d-1":
                    await env.wait_phase(run, *ENDS.values(), within=150)
            await engines.end_random_kills()
            gate.touch()

        async def answer_d1_after_its_pause() -> None:
            await d1_recorded.hit.wait()
            await env.wait_run("d-1", lambda r: overall(r).get("reason") == "ManuallyPause",
                               within=150)
            await pause(env, "d-1", False)
            await delegations.answer(("d-1", "approve"))

        random_writes = [rng.randint(1, 12) for _ in range(RANDOM_KILLS)]
        async with Engines(engine_target(env), tmp_path, CONFIG, points, timeline,
                           random_writes) as engines:
            delegations.engines = engines
            async with asyncio.TaskGroup() as group:
                group.create_task(stop_h0())
                group.create_task(answer_d1_after_its_pause())
                group.create_task(start_d1_alone(engines))
                ended = {run: group.create_task(env.wait_phase(run, *ENDS.values(), within=150))
                         for run in ENDS}
            for task in delegations.answers:
                await task
            for run in ("h-0", "h-1"):
                await no_pods_left(env, run)
        receiver.on_request = None

    context = f"seed {seed}, kills {[k.label for k in timeline if isinstance(k, Kill)]}"
    assert engines.deaths == [], context
    for run, phase in ENDS.items():
        assert overall(ended[run].result())["phase"] == phase, (run, context)
    for run, (stage, attempts) in ATTEMPTS.items():
        pods = ledger.stage_pods(run, stage)
        assert ledger.attempts(run, stage) == [str(a) for a in range(1, attempts + 1)], (
            run, pods, context)
        assert all(len(created) == 1 for created in pods.values()), (run, pods, context)
        assert ended[run].result()["status"]["stages"][stage]["attempts"] == attempts
    assert engines.unreached() == [], context
    assert unexplained_repeats(timeline) == [], context
    for run in ("d-0", "d-1", "d-2"):
        assert set(delegations.deliveries[(run, "approve")]) == {f"{uids[run]}:approve"}, (
            run, delegations.deliveries, context)
    assert len(delegations.deliveries[("d-0", "approve")]) >= 2, context
    for run in ("h-0", "h-1"):
        assert ledger.stage_pods(run, "after") == {}, context
        assert ledger.attempts(run, "hold") == ["1"], (run, ledger.stage_pods(run, "hold"),
                                                       context)
        assert ledger.created_after_end(run) == [], context
    assert stage_status(ended["h-0"].result(), "hold")["phase"] == "Cancelled"
    assert stage_status(ended["h-1"].result(), "hold").get("phase") in (None, "Cancelled")


async def no_pods_left(env, run: str, within: float = 30.0) -> None:
    """Wait until no pod of `run` exists (a stopped run's pods are deleted)."""
    deadline = time.monotonic() + within
    while pods := await env.pods(f"{keys.LABEL_WORKFLOWRUN}={run}"):
        if time.monotonic() > deadline:
            raise AssertionError(f"pods of {run} are left: "
                                 f"{[(p['metadata']['name'], p['status']) for p in pods]}")
        await asyncio.sleep(0.05)
