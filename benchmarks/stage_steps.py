"""Where one stage's time goes: a chain of one-stage pods on `cyclone up`, each step timed.

    python benchmarks/stage_steps.py [--stages 200] [--json FILE]

The chain (each stage needing the one before) runs as `dag_overhead.py` runs its DAGs (host
runtime, every stage `true` in its sandbox), with the embedded cluster's `create` and
`patch`, the pod worker and the host runtime's `start` and `wait` wrapped to note when each
step of each stage happens. Prints the median of every step over the chain (its first
and last 10 stages left out), Cyclone's time per stage, and the baseline: the same
sandbox started as many times in a row from this process.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from common import machine, table
from dag_overhead import run_cyclone
from stage_sandbox import stage_sandbox_argv

from cyclone.kube.embedded.cluster import EmbeddedCluster
from cyclone.node.pod_worker import PodWorker
from cyclone.node.runtimes.host import HostRuntime

NEXT_POD = "the next stage's pod is created"
STEPS = [
    ("pod created", "the node's pod worker starts"),
    ("the node's pod worker starts", "the container's start begins"),
    ("the container's start begins", "the container's start returns"),
    ("the container's start returns", "the agent has seen the container end"),
    ("the agent has seen the container end", "its Succeeded status is written"),
    ("its Succeeded status is written", NEXT_POD),
]
SKIPPED = 10


def stage_of(pod_name: str) -> str | None:
    """`s12` of a stage pod's name (`<run>-s12-<suffix>`)."""
    return next((part for part in pod_name.split("-")
                 if part.startswith("s") and part[1:].isdigit()), None)


def record_steps() -> dict[str, dict[str, float]]:
    """Wrap the calls each step ends with; {stage: {step: perf_counter}}, first time only."""
    seen: dict[str, dict[str, float]] = defaultdict(dict)

    def note(pod_name: str, step: str) -> None:
        stage = stage_of(pod_name)
        if stage is not None:
            seen[stage].setdefault(step, time.perf_counter())

    def after(method: Callable, step_of: Callable) -> Callable:
        @functools.wraps(method)
        async def wrapped(*args, **kwargs):
            result = await method(*args, **kwargs)
            named = step_of(result, *args, **kwargs)
            if named is not None:
                note(*named)
            return result
        return wrapped

    EmbeddedCluster.create = after(  # type: ignore[method-assign]
        EmbeddedCluster.create, lambda result, self, obj, **_: (
            (result["metadata"]["name"], "pod created") if obj.get("kind") == "Pod" else None))
    EmbeddedCluster.patch = after(  # type: ignore[method-assign]
        EmbeddedCluster.patch, lambda result, self, kind, name, body, *a, **k: (
            (name, "its Succeeded status is written")
            if kind.kind == "Pod" and (body.get("status") or {}).get("phase") == "Succeeded"
            else None))
    worker_run = PodWorker.run

    @functools.wraps(worker_run)
    async def run(self: PodWorker) -> bool:
        note(self.name, "the node's pod worker starts")
        return await worker_run(self)

    PodWorker.run = run  # type: ignore[method-assign]
    runtime_start = HostRuntime.start

    @functools.wraps(runtime_start)
    async def start(self: HostRuntime, launch) -> None:
        note(launch.pod_name, "the container's start begins")
        await runtime_start(self, launch)
        note(launch.pod_name, "the container's start returns")

    HostRuntime.start = start  # type: ignore[method-assign]
    HostRuntime.wait = after(  # type: ignore[method-assign]
        HostRuntime.wait, lambda result, self, launch: (
            launch.pod_name, "the agent has seen the container end"))
    return seen


def step_medians(seen: dict[str, dict[str, float]], stages: int) -> list[tuple[str, float]]:
    rows = []
    for begin, end in STEPS:
        gaps = []
        for index in range(SKIPPED, stages - SKIPPED):
            here = seen[f"s{index}"]
            finished = (seen[f"s{index + 1}"].get("pod created") if end == NEXT_POD
                        else here.get(end))
            if begin in here and finished is not None:
                gaps.append((finished - here[begin]) * 1000)
        rows.append((f"{begin} → {end}", statistics.median(gaps) if gaps else float("nan")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.stages < 2 * SKIPPED + 2:
        parser.error(f"--stages must be at least {2 * SKIPPED + 2}")
    print(f"machine: {machine()}", flush=True)
    graph = {f"s{i}": [f"s{i - 1}"] if i else [] for i in range(args.stages)}
    seen = record_steps()
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-steps-") as tmp:
        workdir = Path(tmp)
        argv = stage_sandbox_argv(workdir / "floor")
        started = time.perf_counter()
        for _ in range(args.stages):
            subprocess.run(argv, check=True)
        sandbox_ms = (time.perf_counter() - started) / args.stages * 1000
        cyclone_ms = run_cyclone(graph, workdir / "cyclone", 600) / args.stages * 1000
    rows = step_medians(seen, args.stages)
    print()
    print(table(["step (median over the chain)", "ms"], rows))
    print(f"\nchain of {args.stages}: Cyclone {cyclone_ms:.1f} ms per stage; the sandbox "
          f"started in a row {sandbox_ms:.1f} ms ({cyclone_ms / sandbox_ms:.1f}x)")
    if args.json:
        args.json.write_text(json.dumps({
            "stages": args.stages, "cyclone_ms_per_stage": cyclone_ms,
            "sandbox_ms_per_stage": sandbox_ms, "steps_ms": dict(rows)}, indent=2))


if __name__ == "__main__":
    main()
