"""DAG overhead: random DAGs of `true` stages on Cyclone, `make -j2` and Prefect 3.

    python benchmarks/dag_overhead.py [--sizes 50,200,1000,5000] [--reps 5] [--large-reps 1]
        [--prefect-max 1000] [--no-prefect] [--no-cyclone] [--quick] [--json FILE]

Each DAG (layers of 1-8 stages, 1-3 dependencies per stage, fixed seed) runs:

- on Cyclone as `cyclone up` composes it (`cyclone.up.up`: embedded cluster, node agent
  with the host runtime, engine with its default configuration), one stage pod per
  stage running `true` in bubblewrap; timed from the WorkflowRun's creation until the
  engine's cache shows it Succeeded, a fresh data dir each repetition;
- with `make -j2`, each target's recipe `true` (process spawning alone), and again with
  each recipe `/bin/true` in the same sandbox a Cyclone stage container runs in
  (benchmarks/stage_sandbox.py: the host runtime's two nested bubblewraps, built by
  `HostRuntime.argv`): the sandboxed floor, the baseline of the ratios;
- with Prefect 3 (benchmarks/prefect_dag.py): one task per stage running that same
  sandboxed `true` in a subprocess, dependencies as `wait_for`, on Prefect's own
  ephemeral server whose home and database are in a temporary directory.

Prints the medians of the repetitions and the ratios to make. The sandboxed floor and
Cyclone take turns, so that a machine getting busier or quieter weighs on both: at 50
stages ms/stage is a difference of two figures under a second. Sizes of at least 1,000
stages use `--large-reps` repetitions (Prefect and Cyclone both take minutes there);
Prefect runs only up to `--prefect-max` stages (the 5,000-stage size measures how
Cyclone's cost per stage grows, against its own 50-stage figure).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    NAMESPACE,
    dag_depth,
    free_port,
    machine,
    median,
    overall_phase,
    random_dag,
    ratio,
    run_manifest,
    stage_manifest,
    table,
    wait_in_cache,
    workflow_manifest,
)
from stage_sandbox import stage_sandbox_argv

from cyclone.up import UpContext, UpOptions, up

HERE = Path(__file__).resolve().parent
LARGE = 1000


def run_make(graph: dict[str, list[str]], workdir: Path, sandboxed: bool = False) -> float:
    recipe = shlex.join(stage_sandbox_argv(workdir / "floor")) if sandboxed else "true"
    lines = [".PHONY: all " + " ".join(graph), f"all: {' '.join(graph)}"]
    for name, deps in graph.items():
        lines.append(f"{name}: {' '.join(deps)}\n\t{recipe}")
    makefile = workdir / "Makefile"
    makefile.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    subprocess.run(["make", "-j2", "-s", "-f", str(makefile)], check=True, cwd=workdir)
    return time.perf_counter() - started


class _Finished(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


async def _time_run(ctx: UpContext, graph: dict[str, list[str]], limit: float) -> None:
    """The `serve` hook of `up`: set up the DAG, run it once, end `up` with the time."""
    await ctx.engine.ready.wait()
    for name in graph:
        await ctx.cluster.create(stage_manifest(name))
    await ctx.cluster.create(workflow_manifest("dag", graph))
    caches = ctx.engine.caches
    await wait_in_cache(caches.stages, lambda: all(
        caches.stages.get(NAMESPACE, name) is not None for name in graph), 60)
    await wait_in_cache(caches.workflows, lambda: caches.workflows.get(NAMESPACE, "dag")
                        is not None, 60)
    started = time.perf_counter()
    await ctx.cluster.create(run_manifest("dag-1", "dag"))
    await wait_in_cache(caches.runs, lambda: overall_phase(caches.runs.get(NAMESPACE, "dag-1"))
                        in ("Succeeded", "Failed", "Cancelled"), limit)
    elapsed = time.perf_counter() - started
    run = caches.runs.get(NAMESPACE, "dag-1")
    if overall_phase(run) != "Succeeded":
        raise RuntimeError(f"the run ended {overall_phase(run)}: {run['status']['overall']}")
    raise _Finished(elapsed)


def run_cyclone(graph: dict[str, list[str]], workdir: Path, timeout: float) -> float:
    options = UpOptions(data_dir=str(workdir / "cyclone"), runtime="host", port=free_port())

    async def main() -> float:
        finished: list[float] = []
        try:
            await up(options, serve=lambda ctx: _time_run(ctx, graph, timeout))
        except* _Finished as group:
            finished += [e.seconds for e in group.exceptions]  # type: ignore[attr-defined]
        if not finished:
            raise RuntimeError("cyclone up ended before the run did")
        return finished[0]

    with contextlib.redirect_stdout(io.StringIO()):
        return asyncio.run(main())


def prefect_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "true",
    })
    return env


def run_prefect(graph: dict[str, list[str]], workdir: Path, reps: int) -> dict:
    dag_file = workdir / "dag.json"
    dag_file.write_text(json.dumps(graph))
    result = subprocess.run(
        [sys.executable, str(HERE / "prefect_dag.py"), str(dag_file), "--reps", str(reps),
         "--command", json.dumps(stage_sandbox_argv(workdir / "prefect-floor"))],
        env=prefect_env(workdir / "prefect-home"), cwd=workdir,
        capture_output=True, text=True, timeout=3600,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"the Prefect flow failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def prefect_available() -> bool:
    try:
        import prefect  # noqa: F401
    except ImportError:
        return False
    return True


def measure(size: int, reps: int, args: argparse.Namespace) -> dict:
    graph = random_dag(size, args.width, args.seed)
    row: dict = {"stages": size, "depth": dag_depth(graph), "reps": reps}
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-dag-") as tmp:
        workdir = Path(tmp)
        row["make"] = [run_make(graph, workdir) for _ in range(max(reps, 5))]
        row["make_sandboxed"] = []
        if not args.no_cyclone:
            row["cyclone"] = []
        for rep in range(max(reps, 5)):
            row["make_sandboxed"].append(run_make(graph, workdir, sandboxed=True))
            if not args.no_cyclone and rep < reps:
                rep_dir = workdir / f"rep-{rep}"
                rep_dir.mkdir()
                row["cyclone"].append(run_cyclone(graph, rep_dir, args.timeout))
        if args.prefect and size <= args.prefect_max:
            found = run_prefect(graph, workdir, reps)
            row["prefect"] = found["seconds"]
            row["prefect_version"] = found["version"]
    return row


def floor_seconds(row: dict) -> float:
    """The sandboxed `make -j2` of the row (plain make for figures kept from before it)."""
    return median(row.get("make_sandboxed") or row["make"])


def print_report(rows: list[dict]) -> None:
    headers = ["stages", "depth", "make -j2 s", "sandboxed make s", "cyclone s",
               "cyclone/sandboxed make", "cyclone ms/stage", "prefect s",
               "prefect/sandboxed make", "reps"]
    lines = []
    for row in rows:
        make, floor = median(row["make"]), floor_seconds(row)
        cyclone = median(row.get("cyclone") or [])
        prefect = median(row.get("prefect") or [])
        lines.append([
            row["stages"], row["depth"], make, floor, cyclone, ratio(cyclone, floor),
            (cyclone - floor) / row["stages"] * 1000, prefect, ratio(prefect, floor),
            f"{len(row['make'])}/{len(row.get('cyclone') or [])}/{len(row.get('prefect') or [])}",
        ])
    print(table(headers, lines))
    print("medians; reps = repetitions for make/cyclone/prefect; sandboxed make runs each "
          "recipe `/bin/true` in the sandbox of a Cyclone stage container (stage_sandbox.py), "
          "as Prefect's tasks do here; cyclone ms/stage = (cyclone - sandboxed make) / stages")
    versions = {row.get("prefect_version") for row in rows} - {None}
    if versions:
        print(f"prefect {', '.join(sorted(versions))}, ThreadPoolTaskRunner, ephemeral server")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,1000,5000",
                        help="comma-separated stage counts (default 50,200,1000,5000)")
    parser.add_argument("--width", type=int, default=8, help="widest layer (default 8)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5,
                        help="repetitions below 1,000 stages (default 5; make at least 5)")
    parser.add_argument("--large-reps", type=int, default=1,
                        help="repetitions at 1,000 stages and more (default 1)")
    parser.add_argument("--no-prefect", action="store_true", help="skip Prefect")
    parser.add_argument("--prefect-max", type=int, default=1000,
                        help="largest DAG Prefect runs (default 1000)")
    parser.add_argument("--no-cyclone", action="store_true", help="skip Cyclone")
    parser.add_argument("--quick", action="store_true", help="sizes 50,200, one repetition")
    parser.add_argument("--timeout", type=float, default=900, help="per Cyclone run, seconds")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.reps, args.large_reps = "50,200", 1, 1
    args.prefect = not args.no_prefect and prefect_available()
    if not args.no_prefect and not args.prefect:
        print("prefect is not installed (pip install -e '.[bench]'): skipping it")
    print(f"machine: {machine()}")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = []
    for size in sizes:
        reps = args.large_reps if size >= LARGE else args.reps
        started = time.perf_counter()
        rows.append(measure(size, reps, args))
        print(f"  {size} stages measured in {time.perf_counter() - started:.0f}s", flush=True)
    print(f"\nDAG overhead: random DAGs (width <= {args.width}), every stage `true`")
    print_report(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
