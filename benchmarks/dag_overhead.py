"""Engine overhead on a wide DAG: 200 stages of `true` on the host runtime, against
`make -j2` running the same DAG.

    python benchmarks/dag_overhead.py [--stages 200] [--width 10]

Stages are layered: layer k has `width` stages, each depending on two stages of layer
k-1. Prints both wall times and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import tempfile
import time
from pathlib import Path

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node.agent import NodeAgent
from cyclone.node.runtimes.host import HostRuntime
from cyclone.up import ensure_default_tenant

NAMESPACE = keys.tenant_namespace(keys.DEFAULT_TENANT)


def dag(stages: int, width: int) -> dict[str, list[str]]:
    depends: dict[str, list[str]] = {}
    for index in range(stages):
        layer, position = divmod(index, width)
        name = f"s{index:03d}"
        if layer == 0:
            depends[name] = []
        else:
            previous = (layer - 1) * width
            depends[name] = sorted({
                f"s{previous + position:03d}", f"s{previous + (position + 1) % width:03d}"
            })
    return depends


def run_make(graph: dict[str, list[str]], workdir: Path) -> float:
    lines = [".PHONY: all " + " ".join(graph), f"all: {' '.join(graph)}"]
    for name, deps in graph.items():
        lines.append(f"{name}: {' '.join(deps)}\n\t@sh -c true")
    makefile = workdir / "Makefile"
    makefile.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    subprocess.run(["make", "-j2", "-s", "-f", str(makefile)], check=True, cwd=workdir)
    return time.perf_counter() - started


async def run_cyclone(graph: dict[str, list[str]], workdir: Path) -> float:
    cluster = EmbeddedCluster(workdir / "cluster.db")
    await cluster.start()
    await ensure_default_tenant(cluster)
    agent = NodeAgent(cluster, node_name="bench", data_dir=workdir / "node",
                      runtime=HostRuntime(), schedule_unbound=True)
    engine = Engine(cluster, EngineConfig(gc_enabled=False, watch_pod_events=False))
    for name in graph:
        await cluster.create({
            "apiVersion": keys.API_VERSION, "kind": "Stage",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"pod": {"spec": {"containers": [
                {"name": "main", "image": "busybox", "command": ["sh", "-c", "true"]}
            ]}}},
        })
    await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "Workflow",
        "metadata": {"name": "wide", "namespace": NAMESPACE},
        "spec": {"stages": [{"name": n, "depends": d} for n, d in graph.items()]},
    })
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(agent.run()), group.create_task(engine.run())]
            await engine.ready.wait()
            started = time.perf_counter()
            await cluster.create({
                "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
                "metadata": {"name": "wide-1", "namespace": NAMESPACE},
                "spec": {"workflowRef": {"name": "wide"}},
            })
            while True:
                run = await cluster.get(kinds.WORKFLOW_RUN, "wide-1", NAMESPACE)
                phase = ((run.get("status") or {}).get("overall") or {}).get("phase")
                if phase in ("Succeeded", "Failed", "Cancelled"):
                    break
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            if phase != "Succeeded":
                raise SystemExit(f"the run ended {phase}: {run['status'].get('overall')}")
            for task in tasks:
                task.cancel()
    finally:
        with contextlib.suppress(Exception):
            await cluster.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=200)
    parser.add_argument("--width", type=int, default=10)
    args = parser.parse_args()
    graph = dag(args.stages, args.width)
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-") as tmp:
        make_seconds = run_make(graph, Path(tmp))
        cyclone_seconds = asyncio.run(run_cyclone(graph, Path(tmp)))
    print(f"DAG: {args.stages} stages of `true`, {args.width} wide, 2 dependencies each")
    print(f"make -j2:                   {make_seconds:8.2f} s")
    print(f"cyclone (host runtime):     {cyclone_seconds:8.2f} s")
    print(f"ratio cyclone / make:       {cyclone_seconds / make_seconds:8.1f}x")
    overhead_ms = (cyclone_seconds - make_seconds) / args.stages * 1000
    print(f"engine overhead per stage:  {overhead_ms:8.1f} ms")


if __name__ == "__main__":
    main()
