"""The Stage objects of a run's sub-graph, looked up once per change of the Stage cache.

A reconcile needs the Stage object of every stage in the run's sub-graph (to fail the run
when one is missing, to build pods, to read retry policies). Looking each one up costs
the size of the run on every reconcile; the objects only change when a Stage of the
namespace does. The lookup is kept per (namespace, sub-graph) and made again after the
Stage cache reports any change in that namespace.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from cyclone.engine.controllers.caches import ObjectCache


@dataclass(frozen=True)
class FoundStages:
    """The Stage objects found for a sub-graph (shared between reconciles: read only)."""

    objects: dict[str, dict] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def _find(stages: ObjectCache, namespace: str, names: Sequence[str]) -> FoundStages:
    found = FoundStages()
    for name in names:
        obj = stages.get(namespace, name)
        if obj is None:
            found.missing.append(name)
        else:
            found.objects[name] = obj
    return found


class StageObjects:
    """``lookup(namespace, key, names)``: the Stage objects of ``names``, and the names
    that have none.

    With a cache that reports its changes (an informer's ``add_handler``) the answer is
    kept until a Stage of the namespace changes; otherwise it is looked up every time.
    The mapping returned is shared: callers only read it."""

    def __init__(self, stages: ObjectCache, limit: int = 256) -> None:
        self._stages = stages
        self._limit = limit
        self._changes: dict[str, int] = {}
        self._kept: dict[tuple[str, Hashable], tuple[int, FoundStages]] = {}
        add_handler = getattr(stages, "add_handler", None)
        self._notified = callable(add_handler)
        if self._notified:
            add_handler(self._changed)

    def _changed(self, _event: str, obj: dict, _old: dict | None) -> None:
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        self._changes[namespace] = self._changes.get(namespace, 0) + 1

    def lookup(self, namespace: str, key: Hashable | None, names: Sequence[str]
               ) -> FoundStages:
        """``key`` names ``names`` (the same key, the same names); None: not kept."""
        if not self._notified or key is None:
            return _find(self._stages, namespace, names)
        changes = self._changes.get(namespace, 0)
        kept = self._kept.pop((namespace, key), None)
        if kept is None or kept[0] != changes:
            kept = changes, _find(self._stages, namespace, names)
        self._kept[(namespace, key)] = kept
        while len(self._kept) > self._limit:
            self._kept.pop(next(iter(self._kept)))
        return kept[1]
