"""Scale: a 10,000-stage workflow run to completion, and listing runs with 10,000 stored.

    python benchmarks/scale.py [--stages 10000] [--stored 10000] [--list-reps 5]
        [--timeout 3600] [--quick] [--json FILE]

1. A random DAG of `--stages` stages (layers of 1-8) on the embedded cluster with the
   fake runtime, engine and node agent in this process as `cyclone up` runs them: the
   time to completion, the size of the finished WorkflowRun object as stored (compact
   JSON, what etcd would hold; its default request limit is 1.5 MiB) and of the largest
   of its stage chunks (WorkflowRunStages, for a run above the engine's threshold), and
   this process's resident memory before the run and at its peak (VmHWM).
   `--stored 0` skips part 2.
2. `--stored` finished one-stage runs of one workflow, loaded into a fresh embedded
   store in bulk, then listed through the REST API (`GET .../workflowruns`, in-process
   ASGI) for the first page of 20 and for all of them, and through the Cluster alone.
   Medians of `--list-reps` requests.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import tempfile
import time
from pathlib import Path

from common import (
    NAMESPACE,
    dag_depth,
    machine,
    median,
    overall_phase,
    random_dag,
    rss_now_mib,
    rss_peak_mib,
    run_manifest,
    stage_manifest,
    table,
    wait_in_cache,
    workflow_manifest,
)
from stacks import embedded_stack, quiet_logs

from cyclone.api import keys
from cyclone.kube import kinds

ETCD_LIMIT = 1.5 * 1024 * 1024
ADMIN_TOKEN = "bench-admin-token"


async def big_run(stages: int, workdir: Path, limit: float) -> dict:
    graph = random_dag(stages, 8, 1)
    async with embedded_stack(workdir) as stack:
        for name in graph:
            await stack.admin.create(stage_manifest(name))
        await stack.admin.create(workflow_manifest("big", graph))
        caches = stack.engine.caches
        await wait_in_cache(caches.stages, lambda: all(
            caches.stages.get(NAMESPACE, n) is not None for n in graph), 60)
        await wait_in_cache(caches.workflows, lambda: caches.workflows.get(
            NAMESPACE, "big") is not None, 60)
        rss_before = rss_now_mib()
        before = stack.engine_calls.snapshot()
        started = time.perf_counter()
        await stack.admin.create(run_manifest("big-1", "big"))
        await wait_in_cache(caches.runs, lambda: overall_phase(
            caches.runs.get(NAMESPACE, "big-1")) in ("Succeeded", "Failed", "Cancelled"), limit)
        seconds = time.perf_counter() - started
        calls = stack.engine_calls.snapshot() - before
        run = await stack.admin.get(kinds.WORKFLOW_RUN, "big-1", NAMESPACE)
        chunks = await _stage_chunks(stack.admin, "big-1")
    if overall_phase(run) != "Succeeded":
        raise RuntimeError(f"the run ended {overall_phase(run)}: {run['status']['overall']}")
    size = len(json.dumps(run, separators=(",", ":")))
    chunk_sizes = [len(json.dumps(chunk, separators=(",", ":"))) for chunk in chunks]
    return {
        "stages": stages, "depth": dag_depth(graph), "seconds": seconds, "bytes": size,
        "bytes_per_stage": (size + sum(chunk_sizes)) / stages, "chunks": len(chunks),
        "largest_chunk_bytes": max(chunk_sizes, default=0),
        "rss_before": rss_before, "rss_peak": rss_peak_mib(),
        "status_writes": (calls["replace_status"] + calls["patch_status"]
                          - calls["stage_chunk_status_writes"]),
        "chunk_writes": calls["stage_chunk_writes"],
    }


async def _stage_chunks(cluster, run: str) -> list[dict]:
    """The WorkflowRunStages objects of a run (none on a version without them)."""
    kind = getattr(kinds, "WORKFLOW_RUN_STAGES", None)
    if kind is None:
        return []
    listed = await cluster.list(kind, NAMESPACE,
                                label_selector=f"{keys.LABEL_WORKFLOWRUN}={run}")
    return listed.items


def finished_run(name: str, template: dict) -> dict:
    run = copy.deepcopy(template)
    run["metadata"] = {"name": name, "namespace": NAMESPACE,
                       "labels": {keys.LABEL_PROJECT: "demo", keys.LABEL_WORKFLOW: "ci"}}
    return run


def _template() -> dict:
    now = "2024-01-01T00:00:00Z"
    status = {"phase": "Succeeded", "lastTransitionTime": now, "reason": "PodSucceed",
              "startTime": now}
    return {
        "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
        "spec": {"workflowRef": {"apiVersion": keys.API_VERSION, "kind": "Workflow",
                                 "name": "ci", "namespace": NAMESPACE},
                 "executionContext": {"cluster": keys.CONTROL_CLUSTER_NAME,
                                      "namespace": NAMESPACE, "pvc": ""}},
        "status": {
            "overall": status, "deadline": now, "completionTime": now,
            "stages": {"build": {"status": status, "attempts": 1,
                                 "pod": {"name": "ci-build-0123456789", "namespace": NAMESPACE},
                                 "depends": [], "trivial": False, "outputs": []}},
        },
    }


async def _load(cluster, count: int) -> float:
    """Store `count` finished runs, 500 to a write transaction (the store's own bulk path)."""
    from cyclone.kube.embedded import apiserver

    template = _template()
    started = time.perf_counter()
    for first in range(0, count, 500):
        batch = [finished_run(f"ci-{i:05d}", template) for i in range(first,
                                                                      min(count, first + 500))]

        def write(tx, batch=batch):
            for run in batch:
                status = run.pop("status")
                apiserver.create(tx, run, NAMESPACE)
                name = run["metadata"]["name"]
                apiserver.update(
                    tx, kinds.WORKFLOW_RUN, NAMESPACE, name,
                    lambda current, status=status: {**current, "status": status},
                    status_only=True,
                )

        await cluster._write(write)
    return time.perf_counter() - started


async def listing(stored: int, reps: int, workdir: Path) -> dict:
    import httpx

    from cyclone.kube.embedded import EmbeddedCluster
    from cyclone.server import create_app

    cluster = EmbeddedCluster(workdir / "cluster.db", name=keys.CONTROL_CLUSTER_NAME)
    await cluster.start()
    try:
        app = create_app(cluster=cluster, data_dir=workdir / "server", admin_token=ADMIN_TOKEN)
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://cyclone.bench/apis/v1alpha1",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                         "X-Tenant": keys.DEFAULT_TENANT},
                timeout=300,
            )
            async with client:
                for path, body in (
                    ("/projects", {"metadata": {"name": "demo"}}),
                    ("/projects/demo/stages", {"metadata": {"name": "build"}, "spec": {
                        "pod": {"spec": {"containers": [
                            {"image": "busybox", "command": ["true"]}]}}}}),
                    ("/projects/demo/workflows", {"metadata": {"name": "ci"},
                                                  "spec": {"stages": [{"name": "build"}]}}),
                ):
                    response = await client.post(path, json=body)
                    response.raise_for_status()
                load_seconds = await _load(cluster, stored)
                runs = "/projects/demo/workflows/ci/workflowruns"

                async def timed(url: str) -> tuple[float, int]:
                    began = time.perf_counter()
                    response = await client.get(url)
                    elapsed = time.perf_counter() - began
                    response.raise_for_status()
                    return elapsed, len(response.content)

                await timed(f"{runs}?limit=20")
                page = [await timed(f"{runs}?limit=20") for _ in range(reps)]
                everything = [await timed(runs) for _ in range(reps)]
                total = (await client.get(f"{runs}?limit=1")).json()["metadata"]["total"]
                raw = []
                for _ in range(reps):
                    began = time.perf_counter()
                    await cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)
                    raw.append(time.perf_counter() - began)
    finally:
        await cluster.close()
    if total != stored:
        raise RuntimeError(f"listed {total} runs, stored {stored}")
    return {
        "stored": stored, "load_seconds": load_seconds, "reps": reps,
        "page_seconds": median([p[0] for p in page]),
        "all_seconds": median([e[0] for e in everything]),
        "all_bytes": everything[0][1], "cluster_list_seconds": median(raw),
    }


async def measure(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-scale-") as tmp:
        workdir = Path(tmp)
        run = await big_run(args.stages, workdir / "run", args.timeout)
        print(f"  {args.stages}-stage run done", flush=True)
        listed = None
        if args.stored:
            listed = await listing(args.stored, args.list_reps, workdir / "list")
            print(f"  listing with {args.stored} stored done", flush=True)
    return {"run": run, "list": listed}


def print_report(result: dict) -> None:
    run, listed = result["run"], result["list"]
    largest = max(run["bytes"], run["largest_chunk_bytes"])
    print(table(["stages", "depth", "wall s", "ms/stage", "run status writes", "chunk writes",
                 "run object KiB", "chunks", "largest chunk KiB", "bytes/stage",
                 "largest object / 1.5 MiB", "RSS before MiB", "peak RSS MiB"], [[
        run["stages"], run["depth"], run["seconds"], run["seconds"] / run["stages"] * 1000,
        run["status_writes"], run["chunk_writes"], run["bytes"] / 1024, run["chunks"],
        run["largest_chunk_bytes"] / 1024, run["bytes_per_stage"],
        f"{largest / ETCD_LIMIT:.0%}", run["rss_before"], run["rss_peak"],
    ]]))
    print("one run, fake runtime, embedded cluster; bytes/stage counts the run and its "
          "chunks; RSS of this process (cluster, node agent and engine in one, as "
          "`cyclone up`)\n")
    if listed is None:
        return
    print(table(["runs stored", "API first page (20) ms", "API all ms", "all: response MiB",
                 "Cluster list ms", "reps"], [[
        listed["stored"], listed["page_seconds"] * 1000, listed["all_seconds"] * 1000,
        listed["all_bytes"] / 1024 / 1024, listed["cluster_list_seconds"] * 1000,
        listed["reps"],
    ]]))
    print(f"medians; {listed['stored']:,} finished runs loaded in bulk in "
          f"{listed['load_seconds']:.1f}s; REST API in process over ASGI")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=10000)
    parser.add_argument("--stored", type=int, default=10000)
    parser.add_argument("--list-reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="500 stages, 2,000 runs stored")
    parser.add_argument("--timeout", type=float, default=3600, help="for the big run, seconds")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if args.quick:
        args.stages, args.stored, args.list_reps = 500, 2000, 3
    quiet_logs()
    print(f"machine: {machine()}")
    result = asyncio.run(measure(args))
    print(f"\nScale: a {args.stages:,}-stage run, and {args.stored:,} runs listed")
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
