"""The engine alone in a process, on an embedded cluster file or a kubeconfig: killed and
restarted by the crash tests.

Usage: python engine_process.py <cluster.db | kubeconfig> [--config JSON]
       [--crash-after JSON] [--crash-after-writes N]

``--config`` gives `EngineConfig` fields over the crash tests' defaults (GC off, no pod
events). ``--crash-after`` is a list of crash points ``{"verb", "kind", "name",
"contains"}``: right after the first write that matches one of them has succeeded (verb
``create``, ``patch`` or ``delete``; kind as in `cyclone.kube.kinds`, e.g. ``Pod``; name a
glob; ``contains`` a text the written body, as compact JSON, must hold: for a delete, the
object as it was before), the process prints
``crash <index>`` and SIGKILLs itself, so the cluster holds that write and nothing after it.
``--crash-after-writes N`` does the same (printing ``crash writes``) after the N-th write of
any kind: a random point that, unlike a signal from outside, never falls between a write
landing and the check of the crash points.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from cyclone.engine.config import EngineConfig
from cyclone.engine.manager import Engine
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import NotFound
from cyclone.kube.kinds import Kind

DEFAULTS = {"gc_enabled": False, "watch_pod_events": False}


class CrashingCluster:
    """The engine's cluster, unchanged except that it kills the process after a matching
    write: a crash at a point chosen by the test instead of a random one."""

    def __init__(self, cluster: Any, points: list[dict], after_writes: int | None) -> None:
        self._cluster = cluster
        self._points = points
        self._writes_left = after_writes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def _after(self, verb: str, kind: str, name: str, body: object) -> None:
        text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        for index, point in enumerate(self._points):
            if (point["verb"] == verb and point["kind"] == kind
                    and fnmatch.fnmatchcase(name, point.get("name") or "*")
                    and (point.get("contains") or "") in text):
                _crash(str(index))
        if self._writes_left is not None:
            self._writes_left -= 1
            if self._writes_left <= 0:
                _crash("writes")

    async def create(self, obj: dict, *, namespace: str | None = None) -> dict:
        created = await self._cluster.create(obj, namespace=namespace)
        self._after("create", obj.get("kind") or "", obj["metadata"]["name"], obj)
        return created

    async def patch(self, kind: Kind, name: str, patch: dict | list,
                    namespace: str | None = None, **options: Any) -> dict:
        patched = await self._cluster.patch(kind, name, patch, namespace, **options)
        self._after("patch", kind.kind, name, patch)
        return patched

    async def delete(self, kind: Kind, name: str, namespace: str | None = None,
                     **options: Any) -> dict | None:
        before: object = {}
        if any(p["verb"] == "delete" and p.get("contains") for p in self._points):
            try:
                before = await self._cluster.get(kind, name, namespace)
            except NotFound:
                pass
        deleted = await self._cluster.delete(kind, name, namespace, **options)
        self._after("delete", kind.kind, name, before)
        return deleted


def _crash(what: str) -> None:
    print(f"crash {what}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


async def main(path: Path, config: dict, points: list[dict],
               after_writes: int | None) -> None:
    if path.suffix == ".db":
        cluster = EmbeddedCluster(path)
        await cluster.start()
    else:
        from cyclone.kube.remote import RemoteCluster

        cluster = RemoteCluster.from_kubeconfig(str(path))
    crashing = points or after_writes is not None
    control = CrashingCluster(cluster, points, after_writes) if crashing else cluster
    engine = Engine(control, EngineConfig(**{**DEFAULTS, **config}))
    async with asyncio.TaskGroup() as group:
        group.create_task(engine.run())
        await engine.ready.wait()
        print("ready", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("target", type=Path)
    parser.add_argument("--config", type=json.loads, default={})
    parser.add_argument("--crash-after", type=json.loads, default=[])
    parser.add_argument("--crash-after-writes", type=int, default=None)
    args = parser.parse_args(sys.argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main(args.target, args.config, args.crash_after, args.crash_after_writes))
