"""The stage chunks of large runs (`cyclone.api.stagechunks`) as the run controller reads
and writes them: read from the informer cache, or the version this controller last wrote
when the cache has not caught up (read-your-writes, as `writer.StatusWriter` does for the
run), and written one object per chunk whose entries changed.

A chunk is written before the run's own status (the writer's order): a run read after a
crash between the two has its stage entries already moved and a summary behind, and the
summary (overall phase, counts) is derived again from the entries by the next reconcile.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from cyclone.api import stagechunks
from cyclone.engine.controllers.caches import ObjectCache
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, Conflict, NotFound
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)


def _version(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class StageChunks:
    def __init__(self, control: Cluster, cache: ObjectCache | None) -> None:
        self.control = control
        self.cache = cache
        self._written: dict[tuple[str, str], dict] = {}

    def current(self, namespace: str, name: str) -> dict | None:
        """The newest of the cached chunk and the one this controller last wrote."""
        key = (namespace, name)
        cached = self.cache.get(namespace, name) if self.cache is not None else None
        written = self._written.get(key)
        if written is not None and (cached is None or _version(written) > _version(cached)):
            return written
        self._written.pop(key, None)
        return cached

    def assemble(self, run: dict) -> dict:
        """The run with its stage entries from its chunks (as is for a small run)."""
        namespace = run["metadata"].get("namespace") or ""
        return stagechunks.assemble(run, lambda name: self.current(namespace, name),
                                    with_versions=True)

    def forget(self, namespace: str, run: str) -> None:
        """Drop what this controller remembers of a run's chunks (the run is gone)."""
        prefix = stagechunks.chunk_name(run, 0)[:-1]
        for key in [key for key in self._written
                    if key[0] == namespace and key[1].startswith(prefix)]:
            self._written.pop(key, None)

    async def write(self, run: dict, count: int, patches: Mapping[int, dict[str, Any]],
                    stages: Mapping[str, Any]) -> bool:
        """Write the stage entry ``patches`` (per chunk index, a merge patch of its
        ``status.stages``) of the assembled ``run``, one write per chunk changed;
        ``stages`` are the entries after the change (a chunk not yet read is written whole
        from them). False when a chunk changed meanwhile (the reconcile starts again)."""
        known: Mapping[str, str] = run.get(stagechunks.VERSIONS_KEY) or {}
        whole: dict[int, dict[str, Any]] | None = None
        for index, patch in sorted(patches.items()):
            name = stagechunks.chunk_name(run["metadata"]["name"], index)
            if name in known:
                written = await self._patch(run, name, patch, known[name])
            else:
                if whole is None:
                    whole = stagechunks.group_by_chunk(stages, count)
                written = await self._put(run, index, whole.get(index) or {})
            if written is None:
                return False
            self._written[(run["metadata"]["namespace"], name)] = written
        return True

    async def _patch(self, run: dict, name: str, patch: dict, version: str) -> dict | None:
        namespace = run["metadata"]["namespace"]
        try:
            return await self.control.patch(
                kinds.WORKFLOW_RUN_STAGES, name, {"status": {"stages": patch}}, namespace,
                subresource="status", resource_version=version or None)
        except (Conflict, NotFound):
            await self._refresh(namespace, name)
            return None

    async def _put(self, run: dict, index: int, entries: Mapping[str, Any]) -> dict | None:
        """Create the chunk, then write ``entries`` as its status (the status subresource
        is a second write); one left by an earlier attempt (a crash before the run
        recorded its chunks) or by an earlier run of the same name is taken over and its
        status replaced whole."""
        wanted = stagechunks.chunk_object(run, index, entries)
        namespace, name = run["metadata"]["namespace"], wanted["metadata"]["name"]
        try:
            try:
                found = await self.control.create(
                    {key: value for key, value in wanted.items() if key != "status"},
                    namespace=namespace)
            except AlreadyExists:
                found = await self.control.get(kinds.WORKFLOW_RUN_STAGES, name, namespace)
                if not stagechunks.belongs_to(found, run):
                    found = await self.control.replace({
                        **found, "metadata": {**found["metadata"], **wanted["metadata"]},
                        "spec": wanted["spec"]})
            return await self.control.replace_status(
                {**found, "status": copy.deepcopy(wanted["status"])})
        except (Conflict, NotFound) as exc:
            log.info("chunk %s/%s changed while being written: %s", namespace, name, exc)
            return None

    async def _refresh(self, namespace: str, name: str) -> None:
        try:
            self._written[(namespace, name)] = await self.control.get(
                kinds.WORKFLOW_RUN_STAGES, name, namespace)
        except NotFound:
            self._written.pop((namespace, name), None)
