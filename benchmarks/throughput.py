"""Engine throughput on the fake runtime: N one-stage runs.

    python benchmarks/throughput.py [--runs 200] [--batch 0]

Prints runs per second (first creation to last run Succeeded), the p50/p99 latency from
run creation to its pod being created (seen through a watch), and the Cluster writes the
engine made per stage (a counting proxy around the engine's cluster; the node agent's
own writes are not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from counting import CountingCluster

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node.agent import NodeAgent
from cyclone.node.runtimes.fake import FakeRuntime
from cyclone.up import ensure_default_tenant

NAMESPACE = keys.tenant_namespace(keys.DEFAULT_TENANT)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def benchmark(runs: int, workdir: Path) -> dict:
    cluster = EmbeddedCluster(workdir / "cluster.db")
    await cluster.start()
    await ensure_default_tenant(cluster)
    counting = CountingCluster(cluster)
    agent = NodeAgent(cluster, node_name="bench", data_dir=workdir / "node",
                      runtime=FakeRuntime(), schedule_unbound=True)
    engine = Engine(counting, EngineConfig(gc_enabled=False, watch_pod_events=False))
    await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "Stage",
        "metadata": {"name": "only", "namespace": NAMESPACE},
        "spec": {"pod": {"spec": {"containers": [
            {"name": "main", "image": "busybox", "command": ["true"]}
        ]}}},
    })
    await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "Workflow",
        "metadata": {"name": "one", "namespace": NAMESPACE},
        "spec": {"stages": [{"name": "only"}]},
    })
    created: dict[str, float] = {}
    pod_seen: dict[str, float] = {}
    done: set[str] = set()
    finished = asyncio.Event()

    async def watch_pods() -> None:
        async for event in cluster.watch(kinds.POD, NAMESPACE):
            run = (event.object["metadata"].get("labels") or {}).get(keys.LABEL_WORKFLOWRUN)
            if run and run not in pod_seen:
                pod_seen[run] = time.perf_counter()

    async def watch_runs() -> None:
        async for event in cluster.watch(kinds.WORKFLOW_RUN, NAMESPACE):
            status = event.object.get("status") or {}
            if (status.get("overall") or {}).get("phase") == "Succeeded":
                done.add(event.object["metadata"]["name"])
                if len(done) >= runs:
                    finished.set()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(agent.run()), group.create_task(engine.run()),
                     group.create_task(watch_pods()), group.create_task(watch_runs())]
            await engine.ready.wait()
            writes_before = counting.writes
            started = time.perf_counter()
            for index in range(runs):
                name = f"run-{index:05d}"
                created[name] = time.perf_counter()
                await cluster.create({
                    "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {"workflowRef": {"name": "one"}},
                })
            await asyncio.wait_for(finished.wait(), 600)
            elapsed = time.perf_counter() - started
            writes = counting.writes - writes_before
            calls = dict(counting.calls)
            for task in tasks:
                task.cancel()
    finally:
        with contextlib.suppress(Exception):
            await cluster.close()
    latencies = [pod_seen[name] - created[name] for name in created if name in pod_seen]
    return {
        "runs": runs,
        "elapsed": elapsed,
        "latencies": latencies,
        "writes": writes,
        "calls": calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-") as tmp:
        result = asyncio.run(benchmark(args.runs, Path(tmp)))
    latencies = result["latencies"]
    print(f"runs: {result['runs']} one-stage runs on the fake runtime")
    print(f"throughput:                 {result['runs'] / result['elapsed']:8.1f} runs/s")
    print(f"creation -> pod p50:        {percentile(latencies, 0.5) * 1000:8.1f} ms")
    print(f"creation -> pod p99:        {percentile(latencies, 0.99) * 1000:8.1f} ms")
    print(f"creation -> pod mean:       {statistics.fmean(latencies) * 1000:8.1f} ms")
    print(f"engine writes per stage:    {result['writes'] / result['runs']:8.2f}")
    writes = {k: v for k, v in sorted(result["calls"].items())
              if k in ("create", "replace", "replace_status", "patch", "delete")}
    print(f"engine writes by call:      {writes}")


if __name__ == "__main__":
    main()
