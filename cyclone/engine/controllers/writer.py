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
decided at its first write of stage entries and recorded in the run.

A write of progress only (`cyclone.engine.core.writeback`) may be held back for up to the
engine's ``progress_write_delay_seconds``: the controller then reads the held status as
the run's current one, builds on it, and writes it with what follows (at the latest when
the delay is over) in one patch over the stored status it was computed from."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from cyclone.api import stagechunks
from cyclone.engine.controllers.caches import ObjectCache
from cyclone.engine.controllers.chunks import StageChunks
from cyclone.engine.controllers.statusdiff import status_changes
from cyclone.engine.core.runstate import RunState
from cyclone.engine.metrics import observe_status_write
from cyclone.kube import kinds
from cyclone.kube.errors import Conflict, NotFound
from cyclone.kube.patching import merge_patch_between
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


def _same_version(a: dict, b: dict) -> bool:
    meta_a, meta_b = a["metadata"], b["metadata"]
    return (meta_a.get("uid"), meta_a.get("resourceVersion")) == (
        meta_b.get("uid"), meta_b.get("resourceVersion"))


@dataclass(frozen=True)
class _Held:
    run: dict
    """The run with the status not written yet (at `base`'s resourceVersion)."""
    base: dict
    """The stored run that status is to be written over."""
    due: float
    """When (on the writer's clock) it is to be written at the latest."""


def _counts_patch(old: dict | None, new: dict[str, int]) -> dict:
    return {**dict.fromkeys(old or {}), **new}


class StatusWriter:
    def __init__(self, control: Cluster, runs: ObjectCache,
                 run_stages: ObjectCache | None = None,
                 chunk_threshold: int = stagechunks.DEFAULT_CHUNK_THRESHOLD,
                 progress_delay: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.control = control
        self.runs = runs
        self.chunks = StageChunks(control, run_stages)
        self.chunk_threshold = chunk_threshold
        self.progress_delay = progress_delay
        self.clock = clock
        self._written: dict[tuple[str, str], dict] = {}
        self._held: dict[tuple[str, str], _Held] = {}

    def current(self, namespace: str, name: str) -> dict | None:
        """The newest of the cached run and the one this controller last wrote, with the
        stage entries of a large run filled in from its chunks; a status held back
        (`write_status` with ``may_hold``) in place of the stored one, also over a newer
        version whose status is still the one it was computed over (its spec edited)."""
        run = self._newest(namespace, name)
        key = (namespace, name)
        held = self._held.get(key)
        if run is None:
            self._held.pop(key, None)
            return None
        if held is not None:
            if _same_version(held.base, run):
                return held.run
            if held.base["metadata"].get("uid") == run["metadata"].get("uid") and (
                    held.base.get("status") == run.get("status")):
                rebased = _Held({**run, "status": held.run.get("status")}, run, held.due)
                self._held[key] = rebased
                return rebased.run
            del self._held[key]
        return self.chunks.assemble(run)

    def holds(self, state: RunState) -> bool:
        """Whether `state` was read from a status held back, not yet written."""
        held = self._held.get((state.namespace, state.name))
        return held is not None and held.run is state.run

    def due_in(self, namespace: str, name: str) -> float | None:
        """Seconds until the status held back for the run is to be written; None: none is."""
        held = self._held.get((namespace, name))
        return None if held is None else max(0.0, held.due - self.clock())

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

    async def write_status(self, state: RunState, *, may_hold: bool = False) -> dict | None:
        """Write the working status; None on a Conflict (the caller reconciles again).

        With ``may_hold`` (the changes are progress only) and a progress delay, a run of
        its own status holds the status back instead, until the delay since the first
        change held is over, and returns the run as it would be written."""
        key = (state.namespace, state.name)
        held = self._held.pop(key, None)
        base = held.base if held is not None and held.run is state.run else state.run
        if may_hold and self.progress_delay > 0 and stagechunks.recorded_chunks(
                state.run) is None and len(state.stages) <= self.chunk_threshold:
            due = held.due if base is not state.run else self.clock() + self.progress_delay
            if self.clock() < due:
                run = state.run_with_status()
                self._held[key] = _Held(run, base, due)
                return run
        before = base.get("status") or {}
        changes = (status_changes(state) if base is state.run
                   else merge_patch_between(before, state.status))
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
        meta = base["metadata"]
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
            written = self._newest(state.namespace, state.name) or stored_form(base)
        if count is not None:
            written = self.chunks.assemble(written)
        if base is not state.run and held is not None:
            observe_status_write(base, held.run)
            base = held.run
        observe_status_write(base, written, stage_changes.keys())
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
