"""Progress held back and then lost: an engine behind its work keeps stage starts to
write them later (`core.writeback`); killed before it did, the engine that follows finds
the pods it had made and records them, so every stage still runs exactly once."""

from __future__ import annotations

import asyncio

import pytest

from cyclone.api import keys
from cyclone.kube import kinds

from .crash_kit import CrashPoint, Engines, Kill, Ledger, engine_target
from .harness import BACKENDS, NAMESPACE, overall, running_env, shell_stage, workflow, workflow_run

RUNS = [f"r-{i}" for i in range(6)]
CONFIG = {"gc_enabled": False, "watch_pod_events": False, "workers": 1,
          "progress_write_delay_seconds": 30}
"""One worker and runs that are all queued when it starts: the engine is behind, so it
holds the starts back (for up to 30 s) while it creates the next runs' pods."""


def _recorded_pods(run: dict) -> set[str]:
    stages = (run.get("status") or {}).get("stages") or {}
    return {entry["pod"]["name"] for entry in stages.values() if entry.get("pod")}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_starts_held_back_and_lost_in_a_kill_make_no_second_pod(tmp_path, backend):
    ledger = Ledger()
    lost: list[str] = []
    async with (running_env(tmp_path, with_engine=False, backend=backend) as env,
                ledger.following(env.cluster, NAMESPACE)):
        await env.apply(
            shell_stage("a", "sleep 1"), shell_stage("b", "true"),
            workflow("held", [{"name": "a"}, {"name": "b", "depends": ["a"]}]))
        for run in RUNS:
            await env.cluster.create(workflow_run(run, "held"))

        async def note_unrecorded_pods() -> None:
            """Between the kill and the next engine: pods made but not in their run."""
            listed = await env.cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)
            recorded = set().union(*(_recorded_pods(run) for run in listed.items))
            pods = await env.pods(keys.LABEL_WORKFLOWRUN)
            lost.extend(pod["metadata"]["name"] for pod in pods
                        if pod["metadata"]["name"] not in recorded)

        points = [
            CrashPoint("r-3's first pod created", "create", "Pod", "held-a-*",
                       f'"{keys.LABEL_WORKFLOWRUN}":"r-3"', then=note_unrecorded_pods),
            CrashPoint("r-1's second pod created", "create", "Pod", "held-b-*",
                       f'"{keys.LABEL_WORKFLOWRUN}":"r-1"'),
        ]
        timeline: list = []
        async with Engines(engine_target(env), tmp_path, CONFIG, points, timeline) as engines:
            ended = await asyncio.gather(*(env.wait_phase(run, "Succeeded", within=150)
                                           for run in RUNS))

    kills = [k.label for k in timeline if isinstance(k, Kill)]
    assert engines.deaths == [], kills
    assert engines.unreached() == [], kills
    assert lost, "the first kill lost no held start"
    for run, stored in zip(RUNS, ended, strict=True):
        assert overall(stored)["phase"] == "Succeeded"
        for stage in ("a", "b"):
            pods = ledger.stage_pods(run, stage)
            assert len(pods) == 1 and all(len(uids) == 1 for uids in pods.values()), (
                run, stage, pods, kills)
            assert ledger.attempts(run, stage) == ["1"], (run, stage, kills)
            assert stored["status"]["stages"][stage]["attempts"] == 1
