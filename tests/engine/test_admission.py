"""The admission gate never gives one free slot to two runs, even from a stale cache."""

from __future__ import annotations

import asyncio

from cyclone.engine.config import EngineConfig, QueueLimits
from cyclone.engine.controllers.admission import AdmissionGate
from cyclone.engine.core.parallelism import Admission


def run(name: str, second: int, version: str = "1", **status: object) -> dict:
    return {
        "metadata": {"name": name, "namespace": "cyclone-system", "resourceVersion": version,
                     "creationTimestamp": f"2026-01-01T00:00:{second:02d}Z"},
        "spec": {"workflowRef": {"name": "wf"}},
        "status": status or None,
    }


async def test_started_run_keeps_its_slot_while_the_cache_is_stale():
    gate = AdmissionGate(EngineConfig(overall=QueueLimits(max_running=1, max_queued=5)))
    late, early = run("late", 2), run("early", 1)
    assert await gate.decide(late, [late]) == Admission.START
    # The cache still shows "late" undecided; "early" was created first but arrives second.
    assert await gate.decide(early, [early, late]) == Admission.QUEUE


async def test_concurrent_decisions_never_share_one_slot():
    gate = AdmissionGate(EngineConfig(overall=QueueLimits(max_running=1, max_queued=5)))
    runs = [run(f"r{i}", i) for i in range(6)]
    decisions = await asyncio.gather(*(gate.decide(r, runs) for r in reversed(runs)))
    assert sorted(decisions).count(Admission.START) == 1


async def test_remembered_decision_gives_way_once_the_cache_moves_on():
    gate = AdmissionGate(EngineConfig(overall=QueueLimits(max_running=1, max_queued=0)))
    first, second = run("a", 1), run("b", 2)
    assert await gate.decide(first, [first, second]) == Admission.START
    assert await gate.decide(second, [first, second]) == Admission.REJECT
    finished = run("a", 1, version="9", overall={"phase": "Succeeded"})
    fresh = run("c", 3)
    assert await gate.decide(fresh, [finished, fresh]) == Admission.START


async def test_unlimited_config_always_starts():
    gate = AdmissionGate(EngineConfig())
    runs = [run(f"r{i}", i) for i in range(5)]
    assert {await gate.decide(r, runs) for r in runs} == {Admission.START}
