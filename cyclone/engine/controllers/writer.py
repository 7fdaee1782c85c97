"""Writes to runs with read-your-writes: the controller sees its own last write even
before the informer cache has caught up, so a quick second reconcile does not act on a
stale status (and does not meet a Conflict it could have avoided).

A status write is a merge patch of what changed (for a large run, a few stage entries of
hundreds), made conditional on the resourceVersion the reconcile read: the stored status
is then exactly the one the reconcile computed, and a run changed meanwhile answers
Conflict as a whole replace would. Each write that succeeded is therefore a transition
seen exactly once: it feeds the run logs and metrics (`cyclone.engine.metrics`).

A large run (`cyclone.api.stagechunks`) is read assembled from its chunks, and its status
write is split: the changed stage entries go to their chunks first (`chunks.StageChunks`),
then the rest of the status, with the stage counts, to the run. Whether a run is large is
decided at its first write of stage entries and recorded in the run."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

from cyclone.api import stagechunks
from cyclone.engine.controllers.caches import ObjectCache
from cyclone.engine.controllers.chunks import StageChunks
from cyclone.engine.controllers.statusdiff import status_changes
from cyclone.engine.core.runstate import RunState
from cyclone.engine.metrics import observe_status_write
from cyclone.kube import kinds
from cyclone.kube.errors import Conflict, NotFound
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

RECORD_ATTEMPTS = 5


def _version(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def stored_form(run: dict) -> dict:
    """A run as the cluster stores it: an assembled large run without its stage entries."""
    if stagechunks.VERSIONS_KEY not in run:
        return run
    stored = {key: value for key, value in run.items() if key != stagechunks.VERSIONS_KEY}
    if stagechunks.recorded_chunks(run) is not None:
        stored["status"] = {key: value for key, value in (run.get("status") or {}).items()
                            if key != "stages"}
    return stored


def _counts_patch(old: dict | None, new: dict[str, int]) -> dict:
    return {**dict.fromkeys(old or {}), **new}


class StatusWriter:
    def __init__(self, control: Cluster, runs: ObjectCache,
                 run_stages: ObjectCache | None = None,
                 chunk_threshold: int = stagechunks.DEFAULT_CHUNK_THRESHOLD) -> None:
        self.control = control
        self.runs = runs
        self.chunks = StageChunks(control, run_stages)
        self.chunk_threshold = chunk_threshold
        self._written: dict[tuple[str, str], dict] = {}

    def current(self, namespace: str, name: str) -> dict | None:
        """The newest of the cached run and the one this controller last wrote, with the
        stage entries of a large run filled in from its chunks."""
        run = self._newest(namespace, name)
        return None if run is None else self.chunks.assemble(run)

    def _newest(self, namespace: str, name: str) -> dict | None:
        key = (namespace, name)
        cached = self.runs.get(namespace, name)
        written = self._written.get(key)
        if cached is None:
            self._written.pop(key, None)
            return None
        if written is not None and _version(written) > _version(cached):
            return written
        self._written.pop(key, None)
        return cached

    def remember(self, obj: dict) -> None:
        meta = obj["metadata"]
        self._written[(meta["namespace"], meta["name"])] = obj

    async def refresh(self, namespace: str, name: str) -> None:
        """After a Conflict: remember the live object so the retry starts from it."""
        try:
            self.remember(await self.control.get(kinds.WORKFLOW_RUN, name, namespace))
        except NotFound:
            self._written.pop((namespace, name), None)

    async def write_status(self, state: RunState) -> dict | None:
        """Write the working status; None on a Conflict (the caller reconciles again)."""
        before = state.run.get("status") or {}
        changes = status_changes(state)
        stage_changes = changes.get("stages") or {}
        count = stagechunks.recorded_chunks(state.run)
        if count is None and not before.get("stages") and (
                len(state.stages) > self.chunk_threshold):
            count = stagechunks.chunk_count_for(len(state.stages))
            changes[stagechunks.CHUNKS_FIELD] = {"count": count}
        if count is not None:
            changes, chunk_patches = stagechunks.split_status_patch(changes, count)
            if chunk_patches:
                if not await self.chunks.write(state.run, count, chunk_patches, state.stages):
                    return None
                counts = self.chunks.stage_counts(state.run, state.stages)
                if counts != before.get(stagechunks.COUNTS_FIELD):
                    changes[stagechunks.COUNTS_FIELD] = _counts_patch(
                        before.get(stagechunks.COUNTS_FIELD), counts)
        meta = state.run["metadata"]
        if changes:
            try:
                written = await self.control.patch(
                    kinds.WORKFLOW_RUN, meta["name"], {"status": changes}, meta["namespace"],
                    subresource="status", resource_version=meta.get("resourceVersion"),
                )
            except Conflict:
                await self.refresh(state.namespace, state.name)
                return None
            except NotFound:
                return None
            self.remember(written)
        else:
            written = self._newest(state.namespace, state.name) or stored_form(state.run)
        if count is not None:
            written = self.chunks.assemble(written)
        observe_status_write(state.run, written, stage_changes.keys())
        return written

    async def record(self, state: RunState, apply: Callable[[RunState], None]) -> dict | None:
        """Write what a side effect just did (a POST sent, a notification delivered).

        `apply` sets it on a status; on a Conflict it is set again on the run as it is now
        and written again, so losing a race with another write never makes the engine
        repeat the side effect. None when the run is gone or keeps changing."""
        apply(state)
        for _ in range(RECORD_ATTEMPTS):
            written = await self.write_status(state)
            if written is not None:
                return written
            current = self.current(state.namespace, state.name)
            if current is None or current["metadata"].get("uid") != state.run["metadata"].get(
                    "uid"):
                return None
            state = RunState(current, state.now)
            apply(state)
        return None

    async def add_finalizer(self, run: dict, finalizer: str) -> dict | None:
        updated = copy.deepcopy(stored_form(run))
        updated["metadata"]["finalizers"] = [
            *(run["metadata"].get("finalizers") or []), finalizer
        ]
        updated.pop("status", None)
        return await self._replace(updated)

    async def remove_finalizer(self, run: dict, finalizer: str) -> dict | None:
        updated = copy.deepcopy(stored_form(run))
        updated["metadata"]["finalizers"] = [
            f for f in run["metadata"].get("finalizers") or [] if f != finalizer
        ]
        return await self._replace(updated)

    async def _replace(self, obj: dict) -> dict | None:
        meta = obj["metadata"]
        try:
            written = await self.control.replace(obj)
        except Conflict:
            await self.refresh(meta["namespace"], meta["name"])
            return None
        except NotFound:
            return None
        self.remember(written)
        return self.chunks.assemble(written)
