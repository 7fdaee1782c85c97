"""Where the stage entries of a large run live: WorkflowRunStages objects beside the run.

A run whose first stage write holds more stages than the engine's threshold keeps its
``status.stages`` out of the WorkflowRun, in a fixed number of WorkflowRunStages objects
("chunks") in the run's namespace, owned by the run. The run's status records the number
of chunks once (``status.stageChunks.count``) and never changes it, and which chunk holds
a stage is a pure function of its name and that count (`chunk_index`), so any reader, or
an engine restarted, finds every entry. The run keeps everything else of its status, and
``status.stageCounts`` (stages per phase) for a reader that only wants the summary.

This module is pure: splitting a status into chunks and assembling a run from them.
Readers that fetch the chunks are `cyclone.engine.runstages` (API reads) and the run
controller's writer (informer caches).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from pydantic import Field

from cyclone.api import keys
from cyclone.api.common import CycloneModel
from cyclone.api.meta import CycloneObject
from cyclone.api.workflowrun import StageChunkRecord, StageStatus

__all__ = ["StageChunkRecord"]

STAGES_PER_CHUNK = 100
"""Stages per chunk on average: with names spread by hash, the fullest of a run's chunks
stays near 125 entries (~30 KiB), far below etcd's 1.5 MiB request limit. Every stage
event rewrites the chunk holding the stage (the store encodes and keeps the whole
object), so a small chunk keeps that write cheap; 10,000 stages make 100 objects."""

DEFAULT_CHUNK_THRESHOLD = 500
"""A run with more stages than this stores them in chunks (the engine's default)."""

CHUNKS_FIELD = "stageChunks"
COUNTS_FIELD = "stageCounts"
LABEL_CHUNK_OF = keys.LABEL_WORKFLOWRUN
"""Every chunk is labelled with its run's name, so one list finds them all."""

VERSIONS_KEY = "stageChunkVersions"
"""In a run assembled by the engine (never stored, never served): resourceVersion of each
chunk the entries came from, by chunk name."""

NO_PHASE = "None"
"""The key of `status.stageCounts` for entries without a phase yet."""


class WorkflowRunStagesSpec(CycloneModel):
    run: str = Field(description="Name of the WorkflowRun whose stages these are.")
    index: int = Field(ge=0, description="Index of this chunk among the run's chunks.")


class WorkflowRunStagesStatus(CycloneModel):
    stages: dict[str, StageStatus] = Field(default_factory=dict)


class WorkflowRunStages(CycloneObject):
    """Beyond Cyclone v1: a part of the stage entries of a large WorkflowRun, written by
    the engine only; read-only to tenants."""

    KIND: ClassVar[str] = "WorkflowRunStages"
    PLURAL: ClassVar[str] = "workflowrunstages"
    SHORT_NAME: ClassVar[str] = "wfrs"

    spec: WorkflowRunStagesSpec
    status: WorkflowRunStagesStatus | None = None


def chunk_count_for(stages: int, per_chunk: int = STAGES_PER_CHUNK) -> int:
    """The number of chunks a run of ``stages`` stages gets."""
    return max(1, -(-stages // per_chunk))


def chunk_index(stage: str, count: int) -> int:
    """The chunk that holds a stage's entry (stable across processes and versions)."""
    return zlib.crc32(stage.encode()) % count


def chunk_name(run: str, index: int) -> str:
    return f"{run}-stages-{index}"


def recorded_chunks(run: Mapping[str, Any]) -> int | None:
    """The chunk count a run's status records; None for a run that keeps its stages."""
    record = ((run.get("status") or {}).get(CHUNKS_FIELD)) or {}
    count = record.get("count") if isinstance(record, Mapping) else None
    return count if isinstance(count, int) and count > 0 else None


def chunk_names(run: Mapping[str, Any]) -> list[str]:
    count = recorded_chunks(run)
    name = run["metadata"]["name"]
    return [chunk_name(name, index) for index in range(count or 0)]


def group_by_chunk(stages: Mapping[str, Any], count: int) -> dict[int, dict[str, Any]]:
    """Stage entries (or a merge patch of them) grouped by the chunk that holds each."""
    grouped: dict[int, dict[str, Any]] = {}
    for stage, entry in stages.items():
        grouped.setdefault(chunk_index(stage, count), {})[stage] = entry
    return grouped


def split_status_patch(changes: Mapping[str, Any], count: int
                       ) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """A merge patch of a large run's assembled status, split into the patch of the run
    (all but ``stages``) and, per chunk whose entries change, the patch of its
    ``status.stages``."""
    run_patch = {key: value for key, value in changes.items() if key != "stages"}
    return run_patch, group_by_chunk(changes.get("stages") or {}, count)


def counted_phase(entry: Mapping[str, Any] | None) -> str:
    """The key of ``status.stageCounts`` an entry counts under."""
    return ((entry or {}).get("status") or {}).get("phase") or NO_PHASE


def stage_counts(stages: Iterable[Mapping[str, Any] | None]) -> dict[str, int]:
    """Entries per phase (`NO_PHASE` for entries without one), for ``status.stageCounts``."""
    counts = Counter(counted_phase(entry) for entry in stages)
    return dict(sorted(counts.items()))


def counts_after(counts: Mapping[str, int], before: Mapping[str, Any],
                 after: Mapping[str, Any], changed: Iterable[str]) -> dict[str, int]:
    """`stage_counts` of ``after`` from ``counts``, those of ``before``, when the entries
    of the two differ only in the ``changed`` stages."""
    new = Counter(counts)
    for stage in changed:
        if stage in before:
            new[counted_phase(before[stage])] -= 1
        if stage in after:
            new[counted_phase(after[stage])] += 1
    return dict(sorted((phase, count) for phase, count in new.items() if count))


def chunk_object(run: Mapping[str, Any], index: int, stages: Mapping[str, Any]) -> dict:
    """A new chunk of ``run`` holding ``stages``, owned by the run (garbage-collected
    with it)."""
    meta = run["metadata"]
    return {
        "apiVersion": keys.API_VERSION,
        "kind": WorkflowRunStages.KIND,
        "metadata": {
            "name": chunk_name(meta["name"], index),
            "namespace": meta["namespace"],
            "labels": {LABEL_CHUNK_OF: meta["name"]},
            "ownerReferences": [{
                "apiVersion": run.get("apiVersion") or keys.API_VERSION,
                "kind": run.get("kind") or "WorkflowRun",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "spec": {"run": meta["name"], "index": index},
        "status": {"stages": dict(stages)},
    }


def belongs_to(chunk: Mapping[str, Any] | None, run: Mapping[str, Any]) -> bool:
    """Whether ``chunk`` is one the engine wrote for this very run (owned by its uid): a
    leftover of an earlier run of the same name is not."""
    if chunk is None:
        return False
    uid = run["metadata"].get("uid")
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in chunk["metadata"].get("ownerReferences") or [])


def assemble(run: dict, chunk_of: Callable[[str], Mapping[str, Any] | None],
             *, with_versions: bool = False) -> dict:
    """``run`` with ``status.stages`` filled in from its chunks (``chunk_of(name)``: the
    chunk object, or None when missing); a run that keeps its stages is returned as is.

    With ``with_versions`` the result also carries `VERSIONS_KEY` (for the engine, whose
    bookkeeping must see a chunk written by someone else as a new version of the run)."""
    names = chunk_names(run)
    if not names:
        return run
    stages: dict[str, Any] = {}
    versions: dict[str, str] = {}
    for name in names:
        chunk = chunk_of(name)
        if not belongs_to(chunk, run):
            continue
        assert chunk is not None
        stages.update((chunk.get("status") or {}).get("stages") or {})
        versions[name] = str(chunk["metadata"].get("resourceVersion") or "")
    assembled = {**run, "status": {**(run.get("status") or {}), "stages": stages}}
    if with_versions:
        assembled[VERSIONS_KEY] = versions
    return assembled


def assembled_version(run: Mapping[str, Any]) -> str:
    """The run's resourceVersion, followed by its chunks' when it was assembled."""
    version = str((run.get("metadata") or {}).get("resourceVersion") or "")
    chunks = run.get(VERSIONS_KEY)
    if not chunks:
        return version
    return version + "/" + ",".join(f"{name}={rv}" for name, rv in sorted(chunks.items()))
