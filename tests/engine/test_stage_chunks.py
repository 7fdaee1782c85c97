"""A run with more stages than the engine's threshold keeps its stage entries in
WorkflowRunStages objects: it runs as any run does, the WorkflowRun holds only the summary,
its chunks hold every entry, and they go when the run goes."""

from __future__ import annotations

import asyncio
import time

import pytest

from cyclone.api import keys, stagechunks
from cyclone.engine.config import EngineConfig
from cyclone.engine.runstages import read_run
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound

from .harness import BACKENDS, NAMESPACE, running_env, shell_stage, workflow, workflow_run

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

THRESHOLD = 4
STAGES = 12


def chained_workflow(name: str, count: int) -> list[dict]:
    """``count`` quick stages, each after the one four places before it."""
    objects = [shell_stage(f"s{i}", "true") for i in range(count)]
    objects.append(workflow(name, [
        {"name": f"s{i}", **({"depends": [f"s{i - 4}"]} if i >= 4 else {})}
        for i in range(count)]))
    return objects


async def chunks_of(cluster, run: str) -> list[dict]:
    listed = await cluster.list(kinds.WORKFLOW_RUN_STAGES, NAMESPACE,
                                label_selector=f"{keys.LABEL_WORKFLOWRUN}={run}")
    return listed.items


async def test_run_above_the_threshold_keeps_its_stages_in_chunks(tmp_path, backend):
    config = EngineConfig(gc_enabled=False, watch_pod_events=False,
                          stage_chunk_threshold=THRESHOLD)
    async with running_env(tmp_path, config, backend=backend) as env:
        await env.apply(*chained_workflow("wide", STAGES), workflow_run("wide-1", "wide"),
                        *chained_workflow("narrow", THRESHOLD)[-1:],
                        workflow_run("narrow-1", "narrow"))
        stored = await env.wait_phase("wide-1", "Succeeded", within=120)
        small = await env.wait_phase("narrow-1", "Succeeded", within=120)

        status = stored["status"]
        assert not status.get("stages"), "a large run keeps no stage entry in itself"
        count = status[stagechunks.CHUNKS_FIELD]["count"]
        assert count == stagechunks.chunk_count_for(STAGES)
        assert status[stagechunks.COUNTS_FIELD] == {"Succeeded": STAGES}

        chunks = await chunks_of(env.cluster, "wide-1")
        assert sorted(c["metadata"]["name"] for c in chunks) == sorted(
            stagechunks.chunk_name("wide-1", i) for i in range(count))
        held = {}
        for chunk in chunks:
            owners = chunk["metadata"]["ownerReferences"]
            assert [o["uid"] for o in owners] == [stored["metadata"]["uid"]]
            for stage in chunk["status"]["stages"]:
                assert stagechunks.chunk_index(stage, count) == chunk["spec"]["index"]
            held.update(chunk["status"]["stages"])
        assert sorted(held) == sorted(f"s{i}" for i in range(STAGES))
        assert {entry["status"]["phase"] for entry in held.values()} == {"Succeeded"}
        assert held["s5"]["depends"] == ["s1"]

        assembled = await read_run(env.cluster, stored)
        assert assembled["status"]["stages"] == held
        assert len(await env.pods()) == STAGES + THRESHOLD, "one pod per stage"

        assert "stageChunks" not in small["status"], "a small run keeps today's shape"
        assert sorted(small["status"]["stages"]) == [f"s{i}" for i in range(THRESHOLD)]
        assert await chunks_of(env.cluster, "narrow-1") == []

        await env.cluster.delete(kinds.WORKFLOW_RUN, "wide-1", NAMESPACE)
        deadline = time.monotonic() + 60
        while await chunks_of(env.cluster, "wide-1"):
            assert time.monotonic() < deadline, "the chunks outlived their run"
            await asyncio.sleep(0.2)
        with pytest.raises(NotFound):
            await env.cluster.get(kinds.WORKFLOW_RUN, "wide-1", NAMESPACE)
