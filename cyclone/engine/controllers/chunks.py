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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cyclone.api import stagechunks
from cyclone.engine.controllers.caches import ObjectCache
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, Conflict, NotFound
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)


_Entries = tuple[str, tuple[tuple[str, str], ...]]
"""Which stage entries an assembled run holds: its uid and the versions of its chunks."""

_COUNTS_KEPT = 512


def _entries_of(run: Mapping[str, Any], versions: Mapping[str, str]) -> _Entries:
    return str(run["metadata"].get("uid") or ""), tuple(sorted(versions.items()))


_ASSEMBLIES_KEPT = 64


def _in_place(stages: Iterable[str], index: int, count: int) -> bool:
    """Whether the entries of ``stages`` in chunk ``index`` are in the chunk that holds
    their stage: when all of a run's are, no stage is in two chunks, and a chunk's
    entries replace those of its last version alone."""
    return all(stagechunks.chunk_index(stage, count) == index for stage in stages)


@dataclass
class _Assembly:
    """The stage entries of a run as last assembled, and the chunk entries (the very
    objects) they were made from; kept only when every entry is in its place."""

    uid: str
    parts: dict[str, Mapping[str, Any]]
    stages: dict[str, Any]

    def reassembled(self, uid: str, parts: Mapping[str, Mapping[str, Any]],
                    index: Mapping[str, int]) -> dict[str, Any] | None:
        """The entries of ``parts`` (``index``: each chunk's index) made from this
        assembly: shared when no chunk changed, a copy with the changed chunks' entries
        replaced otherwise; None when they must be assembled whole (another run, other
        chunks, an entry out of place)."""
        if uid != self.uid or parts.keys() != self.parts.keys():
            return None
        changed = [name for name, part in parts.items() if part is not self.parts[name]]
        if not changed:
            return self.stages
        stages = dict(self.stages)
        for name in changed:
            part, last = parts[name], self.parts[name]
            if not _in_place((stage for stage in part if stage not in last), index[name],
                             len(index)):
                return None
            for stage in last:
                if stage not in part:
                    stages.pop(stage, None)
            stages.update(part)
        return stages


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
        self._counts: dict[tuple[str, str], tuple[_Entries, _Entries, dict[str, int]]] = {}
        """Per run: the entries the last write read, those it stored, and their counts."""
        self._assembled: dict[tuple[str, str], _Assembly] = {}

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
        """The run with its stage entries from its chunks (as is for a small run):
        `stagechunks.assemble`, made from the last assembly of the run when it has one,
        so that a reconcile costs the chunks that changed, not every entry."""
        names = stagechunks.chunk_names(run)
        if not names:
            return run
        namespace = run["metadata"].get("namespace") or ""
        parts: dict[str, Mapping[str, Any]] = {}
        versions: dict[str, str] = {}
        for name in names:
            chunk = self.current(namespace, name)
            if not stagechunks.belongs_to(chunk, run):
                continue
            assert chunk is not None
            parts[name] = (chunk.get("status") or {}).get("stages") or {}
            versions[name] = str(chunk["metadata"].get("resourceVersion") or "")
        key = (namespace, run["metadata"]["name"])
        uid = str(run["metadata"].get("uid") or "")
        held = self._assembled.pop(key, None)
        index = {name: position for position, name in enumerate(names)}
        stages = None if held is None else held.reassembled(uid, parts, index)
        in_place = True
        if stages is None:
            stages = {}
            for part in parts.values():
                stages.update(part)
            in_place = all(_in_place(part, index[name], len(names))
                           for name, part in parts.items())
        if in_place:
            self._assembled[key] = _Assembly(uid, parts, stages)
            while len(self._assembled) > _ASSEMBLIES_KEPT:
                self._assembled.pop(next(iter(self._assembled)))
        return {**run, "status": {**(run.get("status") or {}), "stages": stages},
                stagechunks.VERSIONS_KEY: versions}

    def forget(self, namespace: str, run: str) -> None:
        """Drop what this controller remembers of a run's chunks (the run is gone)."""
        self._counts.pop((namespace, run), None)
        self._assembled.pop((namespace, run), None)
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
        versions = dict(known)
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
            versions[name] = str(written["metadata"].get("resourceVersion") or "")
        self._count(run, versions, stages, patches)
        return True

    def stage_counts(self, run: dict, stages: Mapping[str, Any]) -> dict[str, int]:
        """`stagechunks.stage_counts` of ``stages``, the entries the last `write` of the
        assembled ``run`` stored: kept from that write, counted afresh otherwise."""
        kept = self._counts.get((run["metadata"]["namespace"], run["metadata"]["name"]))
        read = _entries_of(run, run.get(stagechunks.VERSIONS_KEY) or {})
        if kept is not None and kept[0] == read:
            return dict(kept[2])
        return stagechunks.stage_counts(stages.values())

    def _count(self, run: dict, versions: Mapping[str, str], stages: Mapping[str, Any],
               patches: Mapping[int, dict[str, Any]]) -> None:
        """Keep the stage counts of the entries just stored, for the chunk versions that
        hold them: from those of the entries read (kept when the run was read at the
        versions the last write left) and the entries the write changed; counted afresh
        after a restart or a chunk written by someone else."""
        key = (run["metadata"]["namespace"], run["metadata"]["name"])
        read = _entries_of(run, run.get(stagechunks.VERSIONS_KEY) or {})
        kept = self._counts.pop(key, None)
        if kept is not None and kept[1] == read:
            before = (run.get("status") or {}).get("stages") or {}
            counts = stagechunks.counts_after(
                kept[2], before, stages, (stage for patch in patches.values() for stage in patch))
        else:
            counts = stagechunks.stage_counts(stages.values())
        self._counts[key] = (read, _entries_of(run, versions), counts)
        while len(self._counts) > _COUNTS_KEPT:
            self._counts.pop(next(iter(self._counts)))

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
