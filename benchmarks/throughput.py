"""Throughput and latency: N one-stage runs on the fake runtime, on the embedded cluster and
on a real kube-apiserver.

    python benchmarks/throughput.py [--sizes 100,1000,10000] [--kube-sizes 100,2000]
        [--paced-rate 3] [--paced-runs 60] [--paced-one-stage-rate 10]
        [--paced-one-stage-runs 300] [--replicas 1,2] [--replica-runs 1000]
        [--kube-replica-runs 500] [--replica-reps 3] [--no-kube] [--no-embedded] [--quick]
        [--json FILE]

Two kinds of series, on each cluster:

- burst: N one-stage runs created as fast as a few concurrent clients can (the engine is
  saturated); runs/min sustained is N over the time from the first creation to the last
  run seen Succeeded. Creation-to-pod latencies here include the backlog.
- paced: two-stage runs (a -> b) created at a steady rate (default 3 runs/s, where
  Tekton's creation-to-pod gap is reported to grow to tens of seconds); the latencies
  from creation to the first pod and from stage a's pod Succeeded to stage b's pod
  created, without a backlog. A second paced series creates one-stage runs (default
  10 runs/s) and times creation to pod.

Times are taken when this process's own watches first see a thing (the run, the pod,
the pod Succeeded). Requests are the calls the engine (and, apart, the node agent) makes
to its Cluster, per stage; a watch counts once as one stream. On the real apiserver the
engine and the node agent each use their own client with the default client-side limit
(50 requests/s, burst 100); the kube-scheduler binds the pods.

- replicas: the same burst of one-stage runs over four tenant namespaces (one per shard)
  with 1 engine replica (`cyclone engine --shards 1`, today's leader) and with 2
  (`--shards 4`), each replica a process of its own (`engine_replicas.py`); runs/min of
  each and the ratio, and a check that no run was lost or got two pods.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import tempfile
import time
from pathlib import Path

from common import (
    NAMESPACE,
    machine,
    median,
    percentile,
    run_manifest,
    stage_manifest,
    table,
    wait_in_cache,
    workflow_manifest,
)
from counting import split
from engine_replicas import replica_series
from stacks import (
    Stack,
    embedded_stack,
    kube_available,
    kube_plane,
    kube_stack,
    observed,
    quiet_logs,
)

ARGO_DEFAULT_PER_MIN = 270
ARGO_TUNED_PER_MIN = 810


async def prepare(stack: Stack) -> None:
    """Stages `only`, `a`, `b`; workflows `one` (only) and `two` (a -> b)."""
    for name in ("only", "a", "b"):
        await stack.admin.create(stage_manifest(name))
    await stack.admin.create(workflow_manifest("one", {"only": []}))
    await stack.admin.create(workflow_manifest("two", {"a": [], "b": ["a"]}))
    caches = stack.engine.caches
    await wait_in_cache(caches.stages, lambda: all(
        caches.stages.get(NAMESPACE, n) is not None for n in ("only", "a", "b")), 60)
    await wait_in_cache(caches.workflows, lambda: all(
        caches.workflows.get(NAMESPACE, n) is not None for n in ("one", "two")), 60)


def _figures(stack: Stack, before: dict, stages: int) -> dict:
    engine = stack.engine_calls.snapshot() - before["engine"]
    agent = stack.agent_calls.snapshot() - before["agent"]
    (engine_reads, engine_writes), (agent_reads, agent_writes) = split(engine), split(agent)
    return {
        "engine_reads": engine_reads / stages, "engine_writes": engine_writes / stages,
        "agent_reads": agent_reads / stages, "agent_writes": agent_writes / stages,
        "engine_calls": dict(engine), "agent_calls": dict(agent),
    }


def _counters(stack: Stack) -> dict:
    return {"engine": stack.engine_calls.snapshot(), "agent": stack.agent_calls.snapshot()}


async def burst(stack: Stack, observer, prefix: str, runs: int, creators: int,
                limit: float) -> dict:
    names = [f"{prefix}-{i:05d}" for i in range(runs)]
    created: dict[str, float] = {}
    before = _counters(stack)
    done_before = len(observer.run_done)
    pending = iter(names)

    async def creator() -> None:
        for name in pending:
            created[name] = time.perf_counter()
            await stack.admin.create(run_manifest(name, "one"))

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(creators):
            group.create_task(creator())
    created_in = time.perf_counter() - started
    await observer.wait_done(done_before + runs, limit)
    finished = max(observer.run_done[name] for name in names)
    failed = [n for n in names if observer.run_phase.get(n) != "Succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} runs did not succeed, e.g. {failed[0]} "
                           f"({observer.run_reason.get(failed[0])})")
    latencies = [observer.pod_added[(n, "only")] - created[n] for n in names]
    return {
        "kind": "burst", "runs": runs, "seconds": finished - started,
        "created_in": created_in,
        "per_min": runs / (finished - started) * 60,
        "pod_p50": percentile(latencies, 0.5), "pod_p99": percentile(latencies, 0.99),
        **_figures(stack, before, runs),
    }


async def paced(stack: Stack, observer, prefix: str, runs: int, rate: float,
                limit: float, stages: int = 2) -> dict:
    """Runs created at `rate` per second: of workflow `two` (a -> b), or of `one` with
    `stages=1` (then there is no handoff to time)."""
    names = [f"{prefix}-{i:05d}" for i in range(runs)]
    created: dict[str, float] = {}
    before = _counters(stack)
    done_before = len(observer.run_done)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def create(name: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))
        created[name] = time.perf_counter()
        await stack.admin.create(run_manifest(name, "two" if stages == 2 else "one"))

    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for index, name in enumerate(names):
            group.create_task(create(name, start + index / rate))
    await observer.wait_done(done_before + runs, limit)
    finished = max(observer.run_done[name] for name in names)
    failed = [n for n in names if observer.run_phase.get(n) != "Succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} runs did not succeed, e.g. {failed[0]} "
                           f"({observer.run_reason.get(failed[0])})")
    first_stage = "a" if stages == 2 else "only"
    first = [observer.pod_added[(n, first_stage)] - created[n] for n in names]
    handoff = [observer.pod_added[(n, "b")] - observer.pod_succeeded[(n, "a")]
               for n in names] if stages == 2 else []
    return {
        "kind": f"paced {rate:g}/s" + ("" if stages == 2 else " one-stage"), "runs": runs,
        "seconds": finished - began, "per_min": runs / (finished - began) * 60,
        "pod_p50": percentile(first, 0.5), "pod_p99": percentile(first, 0.99),
        "next_p50": percentile(handoff, 0.5) if handoff else None,
        "next_p99": percentile(handoff, 0.99) if handoff else None,
        **_figures(stack, before, runs * stages),
    }


def _merge(results: list[dict]) -> dict:
    """The median of every figure over repetitions."""
    merged = dict(results[0])
    for key, value in results[0].items():
        if isinstance(value, float):
            merged[key] = median([r[key] for r in results])
    merged["reps"] = len(results)
    return merged


async def series(stack: Stack, args: argparse.Namespace, sizes: list[int]) -> list[dict]:
    rows = []
    counter = itertools.count()
    await prepare(stack)
    async with observed(stack) as observer:
        if args.paced_runs:
            result = await paced(stack, observer, f"p{next(counter)}", args.paced_runs,
                                 args.paced_rate, args.timeout)
            rows.append({"cluster": stack.name, **_merge([result])})
            print(f"  {stack.name}: paced series done", flush=True)
        if args.paced_one_stage_runs:
            result = await paced(stack, observer, f"p{next(counter)}",
                                 args.paced_one_stage_runs, args.paced_one_stage_rate,
                                 args.timeout, stages=1)
            rows.append({"cluster": stack.name, **_merge([result])})
            print(f"  {stack.name}: paced one-stage series done", flush=True)
        for size in sizes:
            reps = args.small_reps if size <= 100 and stack.name == "embedded" else 1
            results = [
                await burst(stack, observer, f"b{next(counter)}", size, args.creators,
                            args.timeout)
                for _ in range(reps)
            ]
            rows.append({"cluster": stack.name, **_merge(results)})
            print(f"  {stack.name}: {size} runs done", flush=True)
    return rows


async def measure(args: argparse.Namespace) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-tp-") as tmp:
        workdir = Path(tmp)
        if not args.no_embedded:
            async with embedded_stack(workdir / "embedded") as stack:
                rows += await series(stack, args, args.sizes)
            if args.replicas:
                rows += await replica_series(workdir / "replicas", None, args.replicas,
                                             args.replica_runs, args.creators, args.timeout,
                                             args.replica_reps)
        if args.kube:
            async with kube_plane(workdir / "kube") as plane:
                if args.kube_sizes or args.paced_runs or args.paced_one_stage_runs:
                    async with kube_stack(plane, workdir / "kube") as stack:
                        rows += await series(stack, args, args.kube_sizes)
                if args.replicas:
                    rows += await replica_series(
                        workdir / "kube-replicas", plane, args.replicas,
                        args.kube_replica_runs, args.creators, args.timeout,
                        args.replica_reps)
    return rows


def ms(seconds: float | None) -> float:
    return float("nan") if seconds is None else seconds * 1000


def print_replicas(rows: list[dict]) -> None:
    """runs/min of each replica count and the ratio to one replica, per cluster."""
    if not rows:
        return
    print("\nEngine replicas: the same burst of one-stage runs over 4 namespaces, each "
          "replica a process (all on this machine's cores)")
    headers = ["cluster", "replicas", "shards", "runs", "runs/min", "vs 1 replica (median)",
               "lost", "duplicated"]
    lines = []
    for row in rows:
        ones = [r["per_min"] for r in rows
                if r["cluster"] == row["cluster"] and r["replicas"] == 1]
        ratio = row["per_min"] / median(ones) if ones else float("nan")
        lines.append([row["cluster"], row["replicas"], row["shards"], row["runs"],
                      row["per_min"], f"{ratio:.2f}x", row["lost"], row["duplicated"]])
    print(table(headers, lines))
    for row in rows:
        reps = ", ".join(f"{value:,.0f}" for value in row.get("per_min_reps") or [])
        print(f"replicas: {row['cluster']}, {row['replicas']} replica(s): "
              f"{row['per_min']:,.0f} runs/min over {row['runs']:,} runs (median of {reps})")


def print_report(rows: list[dict], args: argparse.Namespace) -> None:
    replicas = [row for row in rows if "replicas" in row]
    rows = [row for row in rows if "replicas" not in row]
    if not rows:
        print_replicas(replicas)
        return
    headers = ["cluster", "series", "runs", "reps", "runs/min", "create→pod p50 ms",
               "p99 ms", "stage done→next pod p50 ms", "p99 ms", "engine reads/stage",
               "engine writes/stage", "agent reads/stage", "agent writes/stage"]
    lines = [[
        row["cluster"], row["kind"], row["runs"], row["reps"], row["per_min"],
        ms(row["pod_p50"]), ms(row["pod_p99"]), ms(row.get("next_p50")),
        ms(row.get("next_p99")), row["engine_reads"], row["engine_writes"],
        row["agent_reads"], row["agent_writes"],
    ] for row in rows]
    print(table(headers, lines))
    print("burst: N one-stage runs created at once (latencies include the backlog); "
          "paced: two-stage runs (one-stage where it says so) at a steady rate; figures are "
          "medians over reps")
    print("\nWhere we stand (this machine also hosts the API server and etcd):")
    for cluster in dict.fromkeys(row["cluster"] for row in rows):
        bursts = [r for r in rows if r["cluster"] == cluster and r["kind"] == "burst"]
        if bursts:
            best = max(bursts, key=lambda r: r["runs"])
            print(f"- {cluster}: {best['per_min']:,.0f} runs/min sustained over "
                  f"{best['runs']:,} runs = {best['per_min'] / ARGO_DEFAULT_PER_MIN:.1f}x "
                  f"Argo's {ARGO_DEFAULT_PER_MIN}/min at defaults, "
                  f"{best['per_min'] / ARGO_TUNED_PER_MIN:.1f}x its {ARGO_TUNED_PER_MIN}/min "
                  "tuned for one controller")
        for row in rows:
            if row["cluster"] == cluster and row["kind"].startswith("paced"):
                print(f"- {cluster}: {row['kind']}: creation→pod p99 is "
                      f"{ms(row['pod_p99']):,.0f} ms (Tekton: tens of seconds at 2-3 runs/s)")
    print_replicas(replicas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000",
                        help="burst sizes on the embedded cluster (default 100,1000,10000)")
    parser.add_argument("--kube-sizes", default="100,2000",
                        help="burst sizes on the real kube-apiserver (default 100,2000)")
    parser.add_argument("--small-reps", type=int, default=3,
                        help="repetitions of embedded bursts of up to 100 runs (default 3; else 1)")
    parser.add_argument("--creators", type=int, default=4,
                        help="concurrent clients creating runs in a burst (default 4)")
    parser.add_argument("--paced-rate", type=float, default=3.0, help="runs/s (default 3)")
    parser.add_argument("--paced-runs", type=int, default=60,
                        help="runs in the paced series, 0 to skip it (default 60)")
    parser.add_argument("--paced-one-stage-rate", type=float, default=10.0,
                        help="runs/s of the paced series of one-stage runs (default 10)")
    parser.add_argument("--paced-one-stage-runs", type=int, default=300,
                        help="runs in that series, 0 to skip it (default 300)")
    parser.add_argument("--replicas", default="1,2",
                        help="engine replica counts compared over one burst, each replica a "
                        "process ('' to skip; default 1,2)")
    parser.add_argument("--replica-runs", type=int, default=1000,
                        help="runs of the replicas burst on the embedded cluster (default 1000)")
    parser.add_argument("--replica-reps", type=int, default=3,
                        help="bursts per replica count, taking turns; the rows give the "
                             "median (default 3)")
    parser.add_argument("--kube-replica-runs", type=int, default=500,
                        help="runs of the replicas burst on the real apiserver (default 500)")
    parser.add_argument("--no-kube", action="store_true", help="skip the real kube-apiserver")
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded cluster")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 100,1000 (kube: 100), 30 paced runs, one repetition")
    parser.add_argument("--timeout", type=float, default=900, help="per series, seconds")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.kube_sizes, args.paced_runs, args.small_reps = "100,1000", "100", 30, 1
        args.paced_one_stage_runs = 50
        args.replica_runs, args.kube_replica_runs, args.replica_reps = 300, 200, 1
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.kube_sizes = [int(s) for s in args.kube_sizes.split(",") if s]
    args.replicas = [int(s) for s in args.replicas.split(",") if s]
    args.kube = not args.no_kube and kube_available()
    if not args.no_kube and not args.kube:
        print("no kube-apiserver binaries (bash scripts/control-plane/build.sh): "
              "skipping the real apiserver")
    quiet_logs()
    print(f"machine: {machine()}")
    rows = asyncio.run(measure(args))
    print("\nThroughput and latency: one-stage runs, fake runtime")
    print_report(rows, args)
    if args.json:
        with contextlib.suppress(OSError):
            args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
