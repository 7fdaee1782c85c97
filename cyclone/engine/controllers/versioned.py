"""Values computed from stored objects, kept per stored version.

An object's (uid, resourceVersion) names one content for ever, so what is computed from
it (a parsed model, its DAG, the Secrets it refers to) can be kept and shared by every
reconcile that reads that version. The values are only read by their users.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerVersion(Generic[T]):
    """`compute(obj)` remembered per (uid, resourceVersion), the oldest dropped past
    `limit`; an object without both is computed afresh every time."""

    def __init__(self, compute: Callable[[dict], T], limit: int = 256) -> None:
        self._compute = compute
        self._limit = limit
        self._values: dict[tuple[str, str], T] = {}

    def __call__(self, obj: dict) -> T:
        meta = obj.get("metadata") or {}
        version = (str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""))
        if not all(version):
            return self._compute(obj)
        if version not in self._values:
            if len(self._values) >= self._limit:
                self._values.pop(next(iter(self._values)))
            self._values[version] = self._compute(obj)
        return self._values[version]
