"""The parsed current objects one process keeps between its writes to the store.

A patch reads the object it changes; parsing a large one back from its stored text cost
more than the rest of the write. The store keeps the last version it wrote or read of an
object here, read-only (`frozen`), together with its resourceVersion, and uses it only
when the row in SQLite still has that version: writes of other processes sharing the file
make it stale, never wrong, and the stored text stays what a restart reads.

Entries change only when a write transaction commits (`apply`), so a rolled-back write
leaves nothing behind. Memory is bounded by an LRU over the size of the objects' JSON
text, so the objects written often (the large runs being reconciled) stay, and small
objects are kept too: they cost little and their writes (pod status) are frequent. The
objects kept are mostly the very ones the informers of the process hold, since watchers
share them, so the cache adds little memory of its own.

Only the thread that runs the store's SQLite work touches a `CurrentObjects`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

ObjectKey = tuple[str, str, str]
"""(kind key, namespace or "", name): the primary key of the `objects` table."""

DEFAULT_BUDGET_BYTES = 16 * 1024 * 1024
"""A parsed object takes several times its text in memory: 16 MiB of text holds a
10,000-stage run with room to spare and stays well inside `cyclone up`'s memory."""


@dataclass(frozen=True, slots=True)
class Current:
    rv: int
    object: dict
    """Read-only (`frozen.FrozenDict`)."""
    size: int
    """Length of its JSON text, what the budget counts."""


class CurrentObjects:
    """An LRU of `Current` entries bounded by the total size of their JSON text."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[ObjectKey, Current] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        """Reads of a current object served from here, and parsed from the stored text."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def version_of(self, key: ObjectKey) -> int | None:
        entry = self._entries.get(key)
        return entry.rv if entry is not None else None

    def get(self, key: ObjectKey, rv: int) -> dict | None:
        """The object kept for `key` if it is at version `rv`."""
        entry = self._entries.get(key)
        if entry is None or entry.rv != rv:
            return None
        self._entries.move_to_end(key)
        return entry.object

    def remember(self, key: ObjectKey, entry: Current | None) -> None:
        """Keep `entry` as the current version of `key` (None: the object is gone)."""
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        if entry is None or entry.size > self.budget_bytes:
            return
        self._entries[key] = entry
        self._bytes += entry.size
        while self._bytes > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def apply(self, written: dict[ObjectKey, Current | None]) -> None:
        """What a committed transaction wrote."""
        for key, entry in written.items():
            self.remember(key, entry)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
