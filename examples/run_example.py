"""Load an example into the cluster of a running `cyclone up` and follow its run.

    python examples/run_example.py examples/diamond.yaml [--data-dir ./.cyclone]
        [--set NAME=VALUE ...]

Objects go straight into the embedded cluster file (several processes may share it), so
this works with or without the REST server. A WorkflowRun whose name is taken gets a new
numbered name. `--set` overrides the run's global variables.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import sys
from pathlib import Path

import yaml

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import AlreadyExists

TERMINAL = {"Succeeded", "Failed", "Cancelled"}


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def with_variables(run: dict, overrides: dict[str, str]) -> dict:
    run = copy.deepcopy(run)
    variables = {v["name"]: v.get("value") for v in run["spec"].get("globalVariables") or []}
    variables.update(overrides)
    run["spec"]["globalVariables"] = [{"name": k, "value": v} for k, v in variables.items()]
    return run


async def apply(cluster, objects: list[dict], overrides: dict[str, str]) -> list[dict]:
    """Create or update every object; returns the runs as created."""
    runs = []
    for obj in objects:
        kind = kinds.kind_of(obj)
        if kind == kinds.WORKFLOW_RUN:
            obj = with_variables(obj, overrides)
            base, attempt = obj["metadata"]["name"], 1
            while True:
                try:
                    runs.append(await cluster.create(obj))
                    break
                except AlreadyExists:
                    attempt += 1
                    obj["metadata"]["name"] = f"{base}-{attempt}"
            continue
        try:
            await cluster.create(obj)
        except AlreadyExists:
            current = await cluster.get(kind, obj["metadata"]["name"],
                                        obj["metadata"].get("namespace"))
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await cluster.replace(obj)
    return runs


def describe(run: dict) -> str:
    status = run.get("status") or {}
    lines = [f"workflowrun {run['metadata']['name']}: {status.get('overall', {}).get('phase')}"]
    for name, entry in (status.get("stages") or {}).items():
        stage = entry.get("status") or {}
        text = f"  {name:<14} {stage.get('phase', ''):<10} {stage.get('reason', '')}"
        if stage.get("message"):
            text += f" — {stage['message']}"
        lines.append(text)
        for output in entry.get("outputs") or []:
            lines.append(f"      {output['key']} = {output.get('value')}")
    return "\n".join(lines)


async def follow(cluster, run: dict, wait: float) -> dict:
    name, namespace = run["metadata"]["name"], run["metadata"]["namespace"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        run = await cluster.get(kinds.WORKFLOW_RUN, name, namespace)
        if ((run.get("status") or {}).get("overall") or {}).get("phase") in TERMINAL:
            break
        await asyncio.sleep(0.2)
    return run


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--data-dir", default="./.cyclone", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to follow the run")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    database = args.data_dir / "cluster.db"
    if not database.exists():
        print(f"no cluster at {database}: start `cyclone up --data-dir {args.data_dir}` first")
        return 2
    cluster = EmbeddedCluster(database)
    await cluster.start()
    try:
        runs = await apply(cluster, load(args.file), overrides)
        ok = True
        for run in runs:
            print(f"created workflowrun {run['metadata']['name']}", flush=True)
            run = await follow(cluster, run, args.wait)
            print(describe(run))
            ok = ok and run.get("status", {}).get("overall", {}).get("phase") == "Succeeded"
        return 0 if ok else 1
    finally:
        await cluster.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
