"""The DAG layout of the web UI (`cyclone.ui.layout.layout_dag`) on 200, 1,000 and 2,000
stages, against the 200 ms target and a plain topological sort of the same graph.

    python benchmarks/ui_layout.py [--stages 200,1000,2000] [--reps 7] [--json FILE]

Two shapes per size:

- layered: benchmarks/common.py `random_dag` (layers of 1..8 stages, each depending on 1-3
  stages of the layer above, now and then one further up): what a CI workflow looks like;
- tangled: each stage depends on 0-3 random stages among the 50 before it — many edges
  span several layers, so the layout carries tens of thousands of dummy nodes.

Figures are medians of `--reps` runs in this process, with the topological sort
(`graphlib.TopologicalSorter.static_order`) of the same graph timed the same way as the
baseline; the ratio says what the layout costs over merely ordering the stages.
"""

from __future__ import annotations

import argparse
import graphlib
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

from common import machine, median, random_dag, ratio, table

from cyclone.ui.layout import layout_dag

TARGET = 0.200

Graph = tuple[list[str], list[tuple[str, str]]]


def layered(stages: int) -> Graph:
    graph = random_dag(stages)
    return list(graph), [(d, n) for n, deps in graph.items() for d in deps]


def tangled(stages: int, seed: int = 7) -> Graph:
    rng = random.Random(seed)
    names = [f"stage-{i:04d}" for i in range(stages)]
    edges = [(names[rng.randint(max(0, i - 50), i - 1)], names[i])
             for i in range(1, stages) for _ in range(rng.randint(0, 3))]
    return names, edges


def timed(action: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return median(times)


def topological(names: list[str], edges: list[tuple[str, str]]) -> list[str]:
    graph: dict[str, set[str]] = {n: set() for n in names}
    for source, target in edges:
        graph[target].add(source)
    return list(graphlib.TopologicalSorter(graph).static_order())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default="200,1000,2000")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="200 and 1,000 stages, 3 reps")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.stages, args.reps = "200,1000", 3
    print(machine())
    rows, records = [], []
    for stages in (int(s) for s in args.stages.split(",")):
        for shape, make in (("layered", layered), ("tangled", tangled)):
            names, edges = make(stages)
            layout = layout_dag(names, edges)
            bends = sum(max(0, len(e.points) - 2) // 2 for e in layout.edges)
            seconds = timed(lambda n=names, e=edges: layout_dag(n, e), args.reps)
            base = timed(lambda n=names, e=edges: topological(n, e), args.reps)
            verdict = "meets" if seconds <= TARGET else "MISSES"
            rows.append((stages, shape, len(edges), layout.layers, bends, seconds * 1000,
                         TARGET * 1000, verdict, base * 1000, ratio(seconds, base)))
            records.append({"stages": stages, "shape": shape, "edges": len(edges),
                            "layers": layout.layers, "dummies": bends,
                            "layout_ms": seconds * 1000, "target_ms": TARGET * 1000,
                            "toposort_ms": base * 1000})
    print(table(("stages", "shape", "edges", "layers", "dummy nodes", "layout ms",
                 "target ms", "target", "toposort ms", "layout / toposort"), rows))
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
