"""What the benchmarks share: DAGs, manifests, statistics, tables and the machine."""

from __future__ import annotations

import asyncio
import os
import platform
import random
import socket
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cyclone.api import keys

NAMESPACE = keys.tenant_namespace(keys.DEFAULT_TENANT)


def random_dag(stages: int, max_width: int = 8, seed: int = 1) -> dict[str, list[str]]:
    """A layered random DAG: layers of 1..max_width stages, each stage after the first
    layer depending on 1-3 stages of the layer above (and now and then one further up).
    The same (stages, max_width, seed) always gives the same DAG."""
    rng = random.Random(f"{stages}/{max_width}/{seed}")
    digits = max(3, len(str(stages - 1)))
    layers: list[list[str]] = []
    graph: dict[str, list[str]] = {}
    index = 0
    while index < stages:
        width = min(rng.randint(1, max_width), stages - index)
        layer = [f"s{i:0{digits}d}" for i in range(index, index + width)]
        for name in layer:
            depends: set[str] = set()
            if layers:
                above = layers[-1]
                depends.update(rng.sample(above, rng.randint(1, min(3, len(above)))))
                if len(layers) > 1 and rng.random() < 0.2:
                    depends.add(rng.choice(layers[rng.randrange(len(layers) - 1)]))
            graph[name] = sorted(depends)
        layers.append(layer)
        index += width
    return graph


def dag_depth(graph: dict[str, list[str]]) -> int:
    """The number of stages on the longest dependency chain."""
    depth: dict[str, int] = {}
    for name, depends in graph.items():
        depth[name] = 1 + max((depth[d] for d in depends), default=0)
    return max(depth.values(), default=0)


def stage_manifest(name: str, command: Sequence[str] = ("true",)) -> dict:
    return {
        "apiVersion": keys.API_VERSION, "kind": "Stage",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"pod": {"spec": {"containers": [
            {"name": "main", "image": "busybox", "command": list(command)}
        ]}}},
    }


def workflow_manifest(name: str, graph: dict[str, list[str]]) -> dict:
    return {
        "apiVersion": keys.API_VERSION, "kind": "Workflow",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"stages": [{"name": n, "depends": d} for n, d in graph.items()]},
    }


def run_manifest(name: str, workflow: str) -> dict:
    """A run as Cyclone's run start writes it (REST, CLI, triggers): with the engine's
    cleanup finalizer already set."""
    return {
        "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "finalizers": [keys.FINALIZER_RUN_CLEANUP]},
        "spec": {"workflowRef": {"name": workflow}},
    }


async def wait_in_cache(informer: Any, ready: Callable[[], bool], seconds: float) -> None:
    """Wait until `ready()` holds, checking after every event the informer applies."""
    event = asyncio.Event()

    def check(*_: object) -> None:
        if ready():
            event.set()

    informer.add_handler(check)
    check()
    async with asyncio.timeout(seconds):
        await event.wait()


def overall_phase(run: dict | None) -> str | None:
    return (((run or {}).get("status") or {}).get("overall") or {}).get("phase")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, base: float) -> str:
    """`value / base` as `12.3x`, or n/a when either is missing."""
    if value != value or base != base or not base:
        return "n/a"
    return f"{value / base:.1f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table with columns padded to line up in a terminal too."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def machine() -> str:
    """One line describing where the figures were taken."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPUs ({cpu_model()}), {memory_gib():.1f} GiB RAM, "
            f"Python {sys.version.split()[0]}, {platform.system()} {platform.release()}, "
            f"load average {load:.2f} at start")


def rss_peak_mib(pid: int | str = "self") -> float:
    """The peak resident set size (VmHWM) of a process, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_now_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    """A loopback port no one listens on now (for a `cyclone up` beside another)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
