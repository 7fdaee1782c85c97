"""What the status writer derives and keeps between reconciles, against the full
recomputation: random runs kept in chunks on the embedded cluster, random stage events,
informer caches that lag or catch up, chunks written by someone else, and restarts that
drop everything kept. Before every write the patch of the touched entries
(`statusdiff.status_changes`) equals the diff of the whole status; after every write the
run's ``stageCounts`` equals the count of the entries written from (and, until someone
else writes a chunk, of the entries the chunks hold)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from cyclone.api import keys, stagechunks
from cyclone.engine.controllers.statusdiff import status_changes
from cyclone.engine.controllers.writer import StatusWriter
from cyclone.engine.core.phases import (
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    WAITING,
)
from cyclone.engine.core.runstate import RunState
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import Conflict, NotFound
from cyclone.kube.patching import merge_patch_between

from ..harness import API

NOW = datetime(2024, 1, 1, tzinfo=UTC)
NAMESPACE = "default"
THRESHOLD = 4
PHASES = [PENDING, RUNNING, WAITING, SUCCEEDED, FAILED, CANCELLED]


class Cache:
    """An informer cache the test moves forward by hand (behind, or caught up)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict] = {}

    def get(self, namespace: str | None, name: str) -> dict | None:
        return self.objects.get((namespace or "", name))

    def list(self, namespace: str | None = None, label_selector: str | None = None
             ) -> list[dict]:
        return list(self.objects.values())

    def put(self, obj: dict) -> None:
        self.objects[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj


async def stored_entries(cluster: EmbeddedCluster, run: str) -> dict:
    listed = await cluster.list(kinds.WORKFLOW_RUN_STAGES, NAMESPACE,
                                label_selector=f"{keys.LABEL_WORKFLOWRUN}={run}")
    entries: dict = {}
    for chunk in listed.items:
        entries.update((chunk.get("status") or {}).get("stages") or {})
    return entries


async def catch_up(cluster: EmbeddedCluster, rng: random.Random, runs: Cache,
                   chunks: Cache, name: str) -> None:
    if rng.random() < 0.7:
        runs.put(await cluster.get(kinds.WORKFLOW_RUN, name, NAMESPACE))
    if rng.random() < 0.7:
        listed = await cluster.list(kinds.WORKFLOW_RUN_STAGES, NAMESPACE,
                                    label_selector=f"{keys.LABEL_WORKFLOWRUN}={name}")
        for chunk in listed.items:
            chunks.put(chunk)


def random_events(rng: random.Random, state: RunState, names: list[str]) -> None:
    for name in rng.sample(names, rng.randint(0, 4)):
        roll = rng.random()
        if roll < 0.6:
            state.set_stage(name, rng.choice(PHASES), rng.choice([None, "Why"]))
        elif roll < 0.8:
            state.stage(name)["attempts"] = rng.randint(0, 3)
        else:
            state.stage(name)
    if rng.random() < 0.2:
        state.set_overall(rng.choice([PENDING, RUNNING, WAITING]))
    if rng.random() < 0.1:
        state.mutable("notifications")[f"n{rng.randint(0, 3)}"] = {"sent": True}


async def foreign_chunk_write(cluster: EmbeddedCluster, rng: random.Random, name: str,
                              names: list[str]) -> None:
    """Someone else changes an entry in its chunk (as an engine of another shard might)."""
    run = await cluster.get(kinds.WORKFLOW_RUN, name, NAMESPACE)
    count = stagechunks.recorded_chunks(run)
    if count is None:
        return
    stage = rng.choice(names)
    chunk = stagechunks.chunk_name(name, stagechunks.chunk_index(stage, count))
    try:
        await cluster.patch(kinds.WORKFLOW_RUN_STAGES, chunk,
                            {"status": {"stages": {stage: {"status": {
                                "phase": rng.choice(PHASES)}}}}},
                            NAMESPACE, subresource="status")
    except NotFound:
        return


@pytest.mark.parametrize("seed", range(12))
async def test_kept_counts_and_touched_diff_equal_the_full_recomputation(tmp_path, seed):
    rng = random.Random(seed)
    names = [f"s{index}" for index in range(rng.randint(THRESHOLD + 1, 24))]
    async with EmbeddedCluster(tmp_path / "c.db") as cluster:
        created = await cluster.create({
            "apiVersion": API, "kind": "WorkflowRun",
            "metadata": {"name": "r", "namespace": NAMESPACE},
            "spec": {"workflowRef": {"name": "wf"}}})
        runs, chunks = Cache(), Cache()
        runs.put(created)
        writer = StatusWriter(cluster, runs, chunks, THRESHOLD)
        first = RunState(writer.current(NAMESPACE, "r"), NOW)
        for name in names:
            first.set_stage(name, PENDING)
        assert await writer.write_status(first) is not None
        checked = 0
        foreign = False
        for _ in range(40):
            roll = rng.random()
            if roll < 0.1:
                writer = StatusWriter(cluster, runs, chunks, THRESHOLD)
            elif roll < 0.2:
                await foreign_chunk_write(cluster, rng, "r", names)
                foreign = True
            await catch_up(cluster, rng, runs, chunks, "r")
            run = writer.current(NAMESPACE, "r")
            assert run is not None
            state = RunState(run, NOW)
            random_events(rng, state, names)
            assert status_changes(state) == merge_patch_between(
                state.run.get("status") or {}, state.status)
            if not state.changed:
                continue
            try:
                written = await writer.write_status(state)
            except Conflict:
                continue
            if written is None:
                continue
            if not status_changes(state).get("stages"):
                continue
            stored = await cluster.get(kinds.WORKFLOW_RUN, "r", NAMESPACE)
            counts = stored["status"][stagechunks.COUNTS_FIELD]
            assert counts == stagechunks.stage_counts(state.stages.values())
            if not foreign:
                entries = await stored_entries(cluster, "r")
                assert counts == stagechunks.stage_counts(entries.values())
            checked += 1
        assert checked > 0
