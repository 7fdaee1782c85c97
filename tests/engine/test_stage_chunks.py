"""A run with more stages than the engine's threshold keeps its stage entries in
WorkflowRunStages objects: it runs as any run does, the WorkflowRun holds only the summary,
its chunks hold every entry, and they go when the run goes."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from cyclone.api import keys, stagechunks
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.stagestart import REASON_REUSED
from cyclone.engine.runstages import read_run
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.server.delegation import report_delegation_result

from .crash_kit import CrashPoint, Engines, engine_target
from .gates import Gate
from .harness import (
    BACKENDS,
    NAMESPACE,
    allow_local_addresses,
    delegation_stage,
    running_env,
    shell_stage,
    workflow,
    workflow_run,
)
from .receiver import http_receiver

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


CRASH_RUNS = 3


async def test_engine_killed_between_chunk_and_run_writes_finishes_each_stage_once(
        tmp_path, backend):
    """Kills right after a chunk is created (the run does not record its chunks yet),
    after a chunk write that starts or ends a stage (the run's summary is behind), and
    after random numbers of writes: every run still succeeds with one pod per stage."""
    points = [
        CrashPoint("chunk created", "create", "WorkflowRunStages", "crash-0-stages-*"),
        CrashPoint("stage started in a chunk", "patch", "WorkflowRunStages", "crash-1-*",
                   contains='"phase":"Running"'),
        CrashPoint("stage ended in a chunk", "patch", "WorkflowRunStages", "crash-2-*",
                   contains='"phase":"Succeeded"'),
    ]
    config = {"gc_enabled": False, "watch_pod_events": False, "workers": 1,
              "stage_chunk_threshold": THRESHOLD}
    async with running_env(tmp_path, with_engine=False, backend=backend) as env:
        await env.apply(
            *(shell_stage(f"s{i}", f"echo 'stage:s{i}' > /cyclone/results/__result__")
              for i in range(STAGES)),
            chained_workflow("wide", STAGES)[-1])
        async with Engines(engine_target(env), tmp_path, config, points, [],
                           random_writes=(20, 45)):
            for index in range(CRASH_RUNS):
                await env.apply(workflow_run(f"crash-{index}", "wide"))
            runs = [await env.wait_phase(f"crash-{index}", "Succeeded", within=180)
                    for index in range(CRASH_RUNS)]
            for point in points:
                assert point.hit.is_set(), f"never crashed at: {point.label}"
        pods = await env.pods(f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}")
        per_stage = Counter((p["metadata"]["labels"][keys.LABEL_WORKFLOWRUN],
                             p["metadata"]["labels"][keys.LABEL_STAGE]) for p in pods)
        assert set(per_stage) == {(f"crash-{r}", f"s{s}") for r in range(CRASH_RUNS)
                                  for s in range(STAGES)}
        assert set(per_stage.values()) == {1}, per_stage.most_common(3)
        for run in runs:
            assert not run["status"].get("stages")
            assert run["status"][stagechunks.COUNTS_FIELD] == {"Succeeded": STAGES}
            assembled = await read_run(env.cluster, run)
            for name, entry in assembled["status"]["stages"].items():
                assert entry["status"]["phase"] == "Succeeded"
                assert entry["outputs"] == [{"key": "stage", "value": name}]


async def test_a_retry_of_a_chunked_run_takes_its_succeeded_stages_over(tmp_path, backend):
    config = EngineConfig(gc_enabled=False, watch_pod_events=False,
                          stage_chunk_threshold=THRESHOLD)
    flag = Gate()
    async with running_env(tmp_path, config, backend=backend) as env:
        stages = chained_workflow("wide", STAGES)
        last = f"s{STAGES - 1}"
        stages[STAGES - 1] = shell_stage(last, flag.check())
        await env.apply(*stages, workflow_run("first", "wide"))
        first = await env.wait_phase("first", "Failed", within=120)
        assert not first["status"].get("stages")
        flag.touch()
        await env.apply(workflow_run("again", "wide", retryOf="first"))
        again = await read_run(env.cluster, await env.wait_phase("again", "Succeeded",
                                                                  within=120))
        reused = {name for name, entry in again["status"]["stages"].items()
                  if entry["status"].get("reason") == REASON_REUSED}
        assert reused == {f"s{i}" for i in range(STAGES - 1)}
        runs_of_pods = Counter(p["metadata"]["labels"][keys.LABEL_WORKFLOWRUN]
                               for p in await env.pods(
                                   f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}"))
        assert runs_of_pods == {"first": STAGES, "again": 1}


async def test_a_delegation_stage_of_a_chunked_run_takes_its_callback(tmp_path, backend):
    config = EngineConfig(gc_enabled=False, watch_pod_events=False,
                          stage_chunk_threshold=THRESHOLD)
    async with (http_receiver() as receiver,
                running_env(tmp_path, config, backend=backend) as env):
        await allow_local_addresses(env.cluster)
        objects = chained_workflow("wide", STAGES)
        objects[5] = delegation_stage("s5", receiver.url)
        objects[9] = shell_stage(
            "s9", "echo \"by:${stages.s5.outputs.approver}\" > /cyclone/results/__result__")
        await env.apply(*objects, workflow_run("wide-1", "wide"))
        [request] = await receiver.wait_for(1, within=60)
        assert request["stage"] == "s5"
        await report_delegation_result(env.cluster, NAMESPACE, "wide-1", "s5",
                                       request["token"], True, "approved",
                                       {"approver": "alice"})
        run = await read_run(env.cluster, await env.wait_phase("wide-1", "Succeeded",
                                                                within=120))
        assert not (await env.run("wide-1"))["status"].get("stages")
        assert run["status"]["stages"]["s5"]["status"]["phase"] == "Succeeded"
        assert run["status"]["stages"]["s9"]["outputs"] == [{"key": "by", "value": "alice"}]
