"""The DAG bookkeeping of each run (`core.bookkeeping.RunBook`), kept between reconciles.

A book is derived from the stage entries of one stored version of a run, and is only
used for a run read at that version: a reconcile that reads the version the book was
last known to match (the one this controller wrote) takes in the entries it changes
itself; a run read at any other version (written by someone else, or after a write that
failed) is compared entry by entry first; a new run, another workflow version or another
``startStages``/``endStages`` builds the book again. Nothing here is needed after a
restart: the first reconcile of each run builds its book from the stored status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cyclone.api import stagechunks
from cyclone.engine.core.bookkeeping import RunBook
from cyclone.engine.core.dag import DagStage, scope_problems, stages_in_scope
from cyclone.engine.core.runstate import RunState

_Shape = tuple[str, str, tuple[str, ...], tuple[str, ...]]
"""What a book's graph comes from: workflow uid and resourceVersion, start and end stages."""


def _version(obj: dict) -> tuple[str, str]:
    """The object's uid and resourceVersion; for a run assembled from stage chunks, the
    versions of its chunks too, so a chunk written by someone else is a new version."""
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or ""), stagechunks.assembled_version(obj)


def scope_key(workflow: dict, start: Sequence[str] | None, end: Sequence[str] | None
              ) -> _Shape | None:
    """What names a run's sub-graph for ever (None for a workflow without a stored
    version): the workflow's uid and resourceVersion, the start and end stages."""
    uid, version = _version(workflow)
    if not uid or not version:
        return None
    return uid, version, tuple(start or ()), tuple(end or ())


@dataclass
class _Held:
    uid: str
    shape: _Shape
    book: RunBook
    version: str | None
    """The run's resourceVersion whose stage entries the book matches; None while a
    reconcile edits them."""
    editing: RunState | None = None


class RunBooks:
    """One `RunBook` per run, the least recently used dropped past ``limit``."""

    def __init__(self, limit: int = 512) -> None:
        self._limit = limit
        self._held: dict[tuple[str, str], _Held] = {}

    def open(self, state: RunState, workflow: dict, nodes: Sequence[DagStage],
             start: Sequence[str] | None, end: Sequence[str] | None,
             scope: Sequence[str]) -> RunBook | None:
        """The book of ``state``'s working entries, for this reconcile to keep current
        (`RunBook.update` with `RunState.touched_stages`); None when the run gets none
        (a workflow without a stored version, or whose sub-graph is not a DAG)."""
        key = (state.namespace, state.name)
        uid, version = _version(state.run)
        shape = scope_key(workflow, start, end)
        held = self._held.pop(key, None)
        if shape is None or not uid or not version:
            return RunBook.build(nodes, scope, state.stages)
        if held is None or held.uid != uid or held.shape != shape:
            book = RunBook.build(nodes, scope, state.stages)
            if book is None:
                return None
            held = _Held(uid, shape, book, version)
        elif held.version != version:
            held.book.resync(state.stages)
        else:
            held.book.update(state.stages, state.touched_stages)
        held.version, held.editing = None, state
        self._held[key] = held
        while len(self._held) > self._limit:
            self._held.pop(next(iter(self._held)))
        return held.book

    def close(self, state: RunState, written: dict | None) -> None:
        """The reconcile of ``state`` is over: ``written`` is the run as its status write
        stored it (None: nothing was written, or the write failed)."""
        held = self._held.get((state.namespace, state.name))
        if held is None or held.editing is not state:
            return
        held.editing = None
        if written is None and state.changed:
            return
        held.book.update(state.stages, state.touched_stages)
        held.version = _version(written if written is not None else state.run)[1]

    def current(self, state: RunState) -> RunBook | None:
        """The book of ``state``'s run when it matches the version ``state`` was read at
        and no reconcile is editing it."""
        held = self._held.get((state.namespace, state.name))
        uid, version = _version(state.run)
        if held is None or held.editing is not None or (held.uid, held.version) != (
                uid, version):
            return None
        return held.book

    def forget(self, namespace: str, name: str) -> None:
        self._held.pop((namespace, name), None)


class ScopeCache:
    """`dag.scope_problems` and `dag.stages_in_scope` of a workflow version and a range,
    the oldest dropped past ``limit``."""

    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._values: dict[_Shape, tuple[list[tuple[str, str]], list[str]]] = {}

    def __call__(self, workflow: dict, nodes: Sequence[DagStage],
                 start: Sequence[str] | None, end: Sequence[str] | None
                 ) -> tuple[list[tuple[str, str]], list[str]]:
        shape = scope_key(workflow, start, end)
        value = self._values.get(shape) if shape is not None else None
        if value is None:
            problems = scope_problems(nodes, start, end)
            value = problems, ([] if problems else stages_in_scope(nodes, start, end))
            if shape is not None:
                if len(self._values) >= self._limit:
                    self._values.pop(next(iter(self._values)))
                self._values[shape] = value
        return value
