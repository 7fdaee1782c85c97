"""A status patch of one stage entry on a large WorkflowRun in the embedded store, with
watchers following it.

    python benchmarks/store_patch.py [--stages 10000] [--patches 50] [--watchers 3]
        [--json FILE]

A run whose status holds `--stages` stage entries is stored; `--watchers` watches follow
the run (the engine's informer, the UI's run index and a run stream hold one each in
`cyclone up`). Each patch changes one stage entry, as the engine's status writes do, and
is timed until every watcher has its event. Printed beside it, measured in the same
process: encoding the whole object once (the floor, since the stored text is written
whole) and parsing it once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import orjson
from common import machine, median, table

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster

NAMESPACE = "default"


def _entry(index: int, phase: str) -> dict:
    return {"status": {"phase": phase, "lastTransitionTime": "2026-12-06T01:00:00Z",
                       "startTime": "2026-12-06T01:00:00Z"},
            "attempts": 1, "pod": {"name": f"big-stage-{index:05d}-0123456789",
                                   "namespace": "cyclone-system"},
            "depends": [f"stage-{index - 1:05d}"] if index else [], "trivial": False}


async def measure(stages: int, patches: int, watchers: int, workdir: Path) -> dict:
    async with EmbeddedCluster(workdir / "c.db") as cluster:
        await cluster.create({"apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
                              "metadata": {"name": "big", "namespace": NAMESPACE},
                              "spec": {"workflowRef": {"name": "wf"}}})
        status = {"stages": {f"stage-{i:05d}": _entry(i, "Pending") for i in range(stages)},
                  "overall": {"phase": "Running"}}
        run = await cluster.patch(kinds.WORKFLOW_RUN, "big", {"status": status}, NAMESPACE,
                                  subresource="status")
        streams = [cluster.watch(kinds.WORKFLOW_RUN, NAMESPACE,
                                 resource_version=run["metadata"]["resourceVersion"])
                   for _ in range(watchers)]
        await cluster.patch(kinds.WORKFLOW_RUN, "big", {"status": {"queued": True}},
                            NAMESPACE, subresource="status")
        for stream in streams:
            await anext(stream)
        times = []
        for index in range(patches):
            patch = {"status": {"stages": {f"stage-{index:05d}": _entry(index, "Succeeded")}}}
            started = time.perf_counter()
            written = await cluster.patch(kinds.WORKFLOW_RUN, "big", patch, NAMESPACE,
                                          subresource="status")
            for stream in streams:
                event = await anext(stream)
                assert event.object["metadata"]["resourceVersion"] == written["metadata"][
                    "resourceVersion"]
            times.append(time.perf_counter() - started)
        for stream in streams:
            await stream.aclose()
        text = orjson.dumps(written)
        encode, parse = [], []
        for _ in range(10):
            started = time.perf_counter()
            orjson.dumps(written)
            encode.append(time.perf_counter() - started)
            started = time.perf_counter()
            orjson.loads(text)
            parse.append(time.perf_counter() - started)
    return {"stages": stages, "watchers": watchers, "patches": patches,
            "object_bytes": len(text), "patch_seconds": median(times),
            "encode_seconds": median(encode), "parse_seconds": median(parse)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=10000)
    parser.add_argument("--patches", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-store-patch-") as tmp:
        result = asyncio.run(measure(args.stages, args.patches, args.watchers, Path(tmp)))
    print(table(["stages", "object KiB", "watchers", "patch + events ms", "encode once ms",
                 "parse once ms", "patch / encode"], [[
        result["stages"], result["object_bytes"] / 1024, result["watchers"],
        result["patch_seconds"] * 1000, result["encode_seconds"] * 1000,
        result["parse_seconds"] * 1000,
        f"{result['patch_seconds'] / result['encode_seconds']:.1f}x",
    ]]))
    print(f"medians of {result['patches']} patches of one stage entry")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
