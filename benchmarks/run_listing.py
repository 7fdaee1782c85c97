"""Run listing: the first page of a workflow's runs with 10,000 stored, paged at the cluster.

    python benchmarks/run_listing.py [--stored 10000] [--limit 50] [--reps 7]
        [--quick] [--json FILE]

`--stored` finished one-stage runs of one workflow are written into a fresh embedded
store in bulk (500 to a write transaction), then listed through the REST API in process
(ASGI, the admin's token): the first page read at the cluster
(`?limit=50&continue=`), a page from the middle of the list (the token of the run in the
middle), the same first page cut from the whole list (`?limit=50`, how every page was
served before), and the whole list. Then the same first page for a second workflow of
`--sparse` runs stored beside them in the namespace, paged and cut from its whole list.
Medians of `--reps` requests after one warm-up each.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import time
from pathlib import Path

from common import NAMESPACE, machine, median, table
from stacks import quiet_logs

from cyclone.api import keys
from cyclone.kube import kinds

ADMIN_TOKEN = "bench-admin-token"
TARGET_MS = 30.0
RUNS = "/projects/demo/workflows/ci/workflowruns"
SPARSE_RUNS = "/projects/demo/workflows/nightly/workflowruns"
NOW = "2024-01-01T00:00:00Z"


def finished_run(name: str, workflow: str = "ci") -> dict:
    status = {"phase": "Succeeded", "lastTransitionTime": NOW, "reason": "PodSucceed",
              "startTime": NOW}
    return {
        "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {keys.LABEL_PROJECT: "demo", keys.LABEL_WORKFLOW: workflow}},
        "spec": {"workflowRef": {"apiVersion": keys.API_VERSION, "kind": "Workflow",
                                 "name": workflow, "namespace": NAMESPACE},
                 "executionContext": {"cluster": keys.CONTROL_CLUSTER_NAME,
                                      "namespace": NAMESPACE, "pvc": ""}},
        "status": {
            "overall": status, "deadline": NOW, "completionTime": NOW,
            "stages": {"build": {"status": status, "attempts": 1,
                                 "pod": {"name": f"{name}-build-0", "namespace": NAMESPACE},
                                 "depends": [], "trivial": False, "outputs": []}},
        },
    }


async def load_runs(cluster, count: int, workflow: str = "ci") -> float:
    """Store `count` finished runs of `workflow` straight into the store, 500 to a
    transaction."""
    from cyclone.kube.embedded import apiserver

    started = time.perf_counter()
    for first in range(0, count, 500):
        batch = [finished_run(f"{workflow}-{i:05d}", workflow)
                 for i in range(first, min(count, first + 500))]

        def write(tx, batch=batch):
            for run in batch:
                status = run.pop("status")
                apiserver.create(tx, run, NAMESPACE)
                apiserver.update(tx, kinds.WORKFLOW_RUN, NAMESPACE, run["metadata"]["name"],
                                 lambda current, status=status: {**current, "status": status},
                                 status_only=True)

        await cluster._write(write)
    return time.perf_counter() - started


def token_after(name: str, resource_version: str) -> str:
    """A continue token that starts just past `name` (the token format of the store)."""
    text = json.dumps({"v": "meta.k8s.io/v1", "rv": int(resource_version),
                       "start": name + "\0"})
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def measure(stored: int, sparse: int, limit: int, reps: int, workdir: Path) -> dict:
    import httpx

    from cyclone.kube.embedded import EmbeddedCluster
    from cyclone.server import create_app

    cluster = EmbeddedCluster(workdir / "cluster.db", name=keys.CONTROL_CLUSTER_NAME)
    await cluster.start()
    try:
        app = create_app(cluster=cluster, data_dir=workdir / "server", admin_token=ADMIN_TOKEN)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://cyclone.bench/apis/v1alpha1",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                     "X-Tenant": keys.DEFAULT_TENANT},
            timeout=300,
        ) as client:
            for path, body in (
                ("/projects", {"metadata": {"name": "demo"}}),
                ("/projects/demo/stages", {"metadata": {"name": "build"}, "spec": {
                    "pod": {"spec": {"containers": [
                        {"image": "busybox", "command": ["true"]}]}}}}),
                ("/projects/demo/workflows", {"metadata": {"name": "ci"},
                                              "spec": {"stages": [{"name": "build"}]}}),
                ("/projects/demo/workflows", {"metadata": {"name": "nightly"},
                                              "spec": {"stages": [{"name": "build"}]}}),
            ):
                (await client.post(path, json=body)).raise_for_status()
            load_seconds = await load_runs(cluster, stored)
            await load_runs(cluster, sparse, "nightly")

            async def timed(params: dict, path: str = RUNS) -> tuple[list[float], dict]:
                answer = (await client.get(path, params=params)).raise_for_status().json()
                times = []
                for _ in range(reps):
                    began = time.perf_counter()
                    (await client.get(path, params=params)).raise_for_status()
                    times.append(time.perf_counter() - began)
                return times, answer

            first, first_answer = await timed({"limit": limit, "continue": ""})
            version = (await cluster.list(kinds.WORKFLOW_RUN, NAMESPACE,
                                          limit=1)).resource_version
            middle, middle_answer = await timed({
                "limit": limit, "continue": token_after(f"ci-{stored // 2:05d}", version)})
            cut, cut_answer = await timed({"limit": limit})
            whole, whole_answer = await timed({})
            sparse_first, sparse_answer = await timed({"limit": limit, "continue": ""},
                                                      SPARSE_RUNS)
            sparse_cut, _ = await timed({"limit": limit}, SPARSE_RUNS)
    finally:
        await cluster.close()
    if len(whole_answer["items"]) != stored or len(first_answer["items"]) != limit:
        raise RuntimeError(f"listed {len(whole_answer['items'])} runs, stored {stored}")
    if not first_answer["metadata"]["continue"] or len(middle_answer["items"]) != limit:
        raise RuntimeError("the first and middle pages should each be full, with more after")
    if len(sparse_answer["items"]) != min(limit, sparse):
        raise RuntimeError(f"the {sparse} runs of nightly: {len(sparse_answer['items'])} listed")
    return {
        "stored": stored, "limit": limit, "reps": reps, "load_seconds": load_seconds,
        "first_page_ms": median(first) * 1000, "middle_page_ms": median(middle) * 1000,
        "cut_from_whole_ms": median(cut) * 1000, "whole_list_ms": median(whole) * 1000,
        "cut_total": cut_answer["metadata"]["total"], "sparse": sparse,
        "sparse_first_page_ms": median(sparse_first) * 1000,
        "sparse_cut_ms": median(sparse_cut) * 1000,
    }


def print_report(result: dict) -> None:
    stored, limit = result["stored"], result["limit"]
    whole = result["whole_list_ms"]
    rows = [
        [f"first page of {limit}, paged at the cluster", result["first_page_ms"]],
        [f"page of {limit} from the middle (after run {stored // 2:,})",
         result["middle_page_ms"]],
        [f"first page of {limit} cut from the whole list (before)",
         result["cut_from_whole_ms"]],
        [f"whole list ({stored:,} runs)", whole],
        [f"first page of {limit}, workflow of {result['sparse']} runs beside them, paged",
         result["sparse_first_page_ms"]],
        ["the same cut from that workflow's whole list (before)", result["sparse_cut_ms"]],
    ]
    rows = [[name, ms, f"{ms / whole:.4f}x"] for name, ms in rows]
    print(table(["request", "ms", "/ whole list"], rows))
    print(f"medians of {result['reps']} requests; {stored:,} finished runs loaded in bulk in "
          f"{result['load_seconds']:.1f}s; REST API in process over ASGI")
    print(f"first page of runs, {stored} stored: {result['first_page_ms']:.1f} ms "
          f"(target ≤ {TARGET_MS:.0f} ms)")
    print(f"first page / whole list: {result['first_page_ms'] / whole:.4f}x "
          f"({whole:.0f} ms for all {stored:,}); first page / the same page cut from the "
          f"whole list: {result['first_page_ms'] / result['cut_from_whole_ms']:.4f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=10000)
    parser.add_argument("--sparse", type=int, default=100,
                        help="runs of a second workflow in the same namespace")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2,000 runs stored, 3 reps")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if args.quick:
        args.stored, args.reps = 2000, 3
    quiet_logs()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-listing-") as tmp:
        result = asyncio.run(measure(args.stored, args.sparse, args.limit, args.reps,
                                     Path(tmp)))
    print(f"\nRun listing: {args.stored:,} runs of one workflow stored")
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
