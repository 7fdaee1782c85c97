"""The SQLite file under the embedded cluster: objects, a change log and one version counter.

Every write runs in a `BEGIN IMMEDIATE` transaction, so several processes may share one
file: the counter is bumped under the write lock, which makes resourceVersions global,
monotonic and committed in order. WAL with `synchronous=NORMAL` keeps every committed
transaction across a crash of the process.

The file holds every Secret, so it is created 0600 (SQLite gives its `-wal` and `-shm`
files the database's mode), and an existing file and its companions are brought to 0600
when opened.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclone.kube.embedded import frozen, jsontext
from cyclone.kube.embedded.current import Current, CurrentObjects, ObjectKey
from cyclone.kube.kinds import Kind
from cyclone.kube.selectors import field_value, selectable_fields

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind_key TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    rv INTEGER NOT NULL,
    owners TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind_key, namespace, name)
);
CREATE INDEX IF NOT EXISTS objects_by_namespace ON objects (namespace);
CREATE TABLE IF NOT EXISTS changes (
    rv INTEGER PRIMARY KEY,
    kind_key TEXT NOT NULL,
    namespace TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    old_body TEXT
);
CREATE TABLE IF NOT EXISTS owner_refs (
    owner_uid TEXT NOT NULL,
    kind_key TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS owner_refs_by_owner ON owner_refs (owner_uid);
CREATE INDEX IF NOT EXISTS owner_refs_by_dependent ON owner_refs (kind_key, namespace, name);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('resource_version', 0), ('compacted', 0);
"""


def kind_key(kind: Kind) -> str:
    return f"{kind.api_version}/{kind.kind}"


def _namespace_of(kind: Kind, obj: dict) -> str:
    return (obj["metadata"].get("namespace") or "") if kind.namespaced else ""


def _owner_uids(obj: dict) -> list[str]:
    return sorted({ref.get("uid", "") for ref in obj["metadata"].get("ownerReferences") or []})


def _selection_may_change(kind: Kind, old: dict, new: dict) -> bool:
    """Whether a label or field selector could match one of `old` and `new` but not the
    other: only then does a watcher with a selector need the old object."""
    if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}):
        return True
    return any(field_value(old, path) != field_value(new, path)
               for path in selectable_fields(kind.kind))


@dataclass
class Change:
    """One entry of the change log.

    `object` and `old` are read-only (`frozen`) and shared by every watcher of the change.
    A change written by this process carries them as written; one read back from the file
    (another process's write, or history older than the feed) parses its text once, on
    first use. `old` is kept only when a selector could tell the two versions apart
    (`_selection_may_change`), which is all a watcher needs it for.
    """

    rv: int
    kind_key: str
    namespace: str
    type: str
    body: str | None
    old_body: str | None = None
    _object: Any = field(default=None, repr=False)
    _old: Any = field(default=None, repr=False)

    @property
    def object(self) -> dict:
        if self._object is None:
            assert self.body is not None
            self._object = frozen.parse(self.body)
        return self._object

    @property
    def old(self) -> dict | None:
        if self._old is None and self.old_body:
            self._old = frozen.parse(self.old_body)
        return self._old


FILE_MODE = 0o600


def _make_private(path: Path) -> None:
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    for companion in (path, path.with_name(path.name + "-wal"),
                      path.with_name(path.name + "-shm"),
                      path.with_name(path.name + "-journal")):
        try:
            if companion.stat().st_mode & 0o777 != FILE_MODE:
                os.chmod(companion, FILE_MODE)
        except FileNotFoundError:
            continue


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    _make_private(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
    return conn


class Transaction:
    """Reads and writes inside one SQLite transaction; every write takes a new version.

    `get` and the writes hand out read-only objects (`frozen`), taken from the process's
    parsed current objects when their version is the stored one; what the transaction
    wrote reaches those only when it commits (`written`, applied by `write_transaction`).
    """

    def __init__(
        self, conn: sqlite3.Connection, change_log_size: int,
        current: CurrentObjects | None = None,
    ) -> None:
        self._conn = conn
        self._change_log_size = change_log_size
        self._current = current if current is not None else CurrentObjects(0)
        self.changes: list[Change] = []
        self.written: dict[ObjectKey, Current | None] = {}

    def current_rv(self) -> int:
        return self._counter("resource_version")

    def changes_after(
        self, rv: int, limit: int = 1000, held: Mapping[int, Change] | None = None,
        kind_key: str | None = None,
    ) -> list[Change]:
        """The change log after `rv`, read on this transaction's own connection."""
        return changes_after(self._conn, rv, limit, held, kind_key)

    def compacted_rv(self) -> int:
        return self._counter("compacted")

    def _counter(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
        return int(row[0])

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict | None:
        """The stored object, read-only; parsed only when this process does not hold its
        stored version already."""
        key = (kind_key(kind), (namespace or "") if kind.namespaced else "", name)
        if key in self.written:
            entry = self.written[key]
            return entry.object if entry is not None else None
        held = self._current.version_of(key)
        row = self._conn.execute(
            "SELECT rv, CASE WHEN rv = ? THEN NULL ELSE body END FROM objects "
            "WHERE kind_key=? AND namespace=? AND name=?",
            (-1 if held is None else held, *key),
        ).fetchone()
        if row is None:
            return None
        rv, body = row
        if body is None:
            obj = self._current.get(key, rv)
            if obj is not None:
                self._current.hits += 1
                return obj
            body = self._body(key)
        self._current.misses += 1
        obj = frozen.parse(body)
        self._current.remember(key, Current(rv, obj, len(body)))
        return obj

    def _body(self, key: ObjectKey) -> str:
        row = self._conn.execute(
            "SELECT body FROM objects WHERE kind_key=? AND namespace=? AND name=?", key
        ).fetchone()
        return row[0]

    def get_private(self, kind: Kind, namespace: str | None, name: str) -> dict | None:
        """The stored object as a private, mutable copy."""
        ns = (namespace or "") if kind.namespaced else ""
        row = self._conn.execute(
            "SELECT body FROM objects WHERE kind_key=? AND namespace=? AND name=?",
            (kind_key(kind), ns, name),
        ).fetchone()
        return jsontext.decode(row[0]) if row else None

    def list(self, kind: Kind, namespace: str | None = None) -> list[dict]:
        if kind.namespaced and namespace is not None:
            rows = self._conn.execute(
                "SELECT body FROM objects WHERE kind_key=? AND namespace=? ORDER BY name",
                (kind_key(kind), namespace),
            )
        else:
            rows = self._conn.execute(
                "SELECT body FROM objects WHERE kind_key=? ORDER BY namespace, name",
                (kind_key(kind),),
            )
        return [jsontext.decode(row[0]) for row in rows]

    def list_from(
        self, kind: Kind, namespace: str | None, start: tuple[str, str], *, inclusive: bool,
        limit: int, containing: tuple[str, ...] = (),
    ) -> list[tuple[str, str, str]]:
        """Up to `limit` (namespace, name, body text) rows in key order from the
        (namespace, name) key `start` (past it unless `inclusive`); within `namespace` when
        given, when the kind is namespaced; only rows whose text holds every `containing`."""
        op = ">=" if inclusive else ">"
        texts = "".join(" AND instr(body, ?) > 0" for _ in containing)
        if kind.namespaced and namespace is None:
            return self._conn.execute(
                "SELECT namespace, name, body FROM objects WHERE kind_key=? AND "
                f"(namespace, name) {op} (?, ?){texts} ORDER BY namespace, name LIMIT ?",
                (kind_key(kind), *start, *containing, limit),
            ).fetchall()
        return self._conn.execute(
            "SELECT namespace, name, body FROM objects WHERE kind_key=? AND namespace=? AND "
            f"name {op} ?{texts} ORDER BY name LIMIT ?",
            (kind_key(kind), namespace if kind.namespaced else "", start[1], *containing,
             limit),
        ).fetchall()

    def terminating(self, kind: Kind) -> list[dict]:
        """Objects of a kind that carry a deletionTimestamp (found by text, then parsed)."""
        rows = self._conn.execute(
            "SELECT body FROM objects WHERE kind_key=? AND body LIKE '%\"deletionTimestamp\"%'",
            (kind_key(kind),),
        )
        return [obj for obj in (jsontext.decode(row[0]) for row in rows)
                if obj["metadata"].get("deletionTimestamp")]

    def namespace_contents(self, namespace: str) -> list[tuple[str, dict]]:
        rows = self._conn.execute(
            "SELECT kind_key, body FROM objects WHERE namespace=? ORDER BY kind_key, name",
            (namespace,),
        )
        return [(row[0], jsontext.decode(row[1])) for row in rows]

    def namespace_is_empty(self, namespace: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM objects WHERE namespace=? LIMIT 1", (namespace,)
        ).fetchone()
        return row is None

    def dependents(self, uid: str) -> list[tuple[str, dict]]:
        rows = self._conn.execute(
            "SELECT o.kind_key, o.body FROM owner_refs r JOIN objects o ON "
            "o.kind_key = r.kind_key AND o.namespace = r.namespace AND o.name = r.name "
            "WHERE r.owner_uid = ?",
            (uid,),
        )
        return [(row[0], jsontext.decode(row[1])) for row in rows]

    def _next_rv(self) -> int:
        self._conn.execute(
            "UPDATE counters SET value = value + 1 WHERE name='resource_version'"
        )
        return self.current_rv()

    def put(self, kind: Kind, obj: dict, old: dict | None) -> dict:
        """Store an object (ADDED when `old` is None, else MODIFIED) under a new version;
        returns it as stored, read-only. `obj` itself is left as it is."""
        rv = self._next_rv()
        stored = frozen.freeze(_at_version(obj, rv))
        body = jsontext.encode(stored)
        ns = _namespace_of(kind, stored)
        key = (kind_key(kind), ns, stored["metadata"]["name"])
        owners = _owner_uids(stored)
        self._conn.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?)",
            (*key, rv, ",".join(owners), body),
        )
        if old is None or _owner_uids(old) != owners:
            self._forget_owners(key)
            self._conn.executemany(
                "INSERT INTO owner_refs VALUES (?, ?, ?, ?)", [(uid, *key) for uid in owners]
            )
        self.written[key] = Current(rv, stored, len(body))
        kept_old = old if old is not None and _selection_may_change(kind, old, stored) else None
        self._record(rv, kind, ns, "ADDED" if old is None else "MODIFIED", body, stored,
                     kept_old)
        return stored

    def remove(self, kind: Kind, obj: dict) -> dict:
        """Delete an object; the DELETED event carries it at the deletion's version
        (returned, read-only; `obj` itself is left as it is)."""
        rv = self._next_rv()
        removed = frozen.freeze(_at_version(obj, rv))
        ns = _namespace_of(kind, removed)
        key = (kind_key(kind), ns, removed["metadata"]["name"])
        self._conn.execute("DELETE FROM objects WHERE kind_key=? AND namespace=? AND name=?", key)
        self._forget_owners(key)
        self.written[key] = None
        self._record(rv, kind, ns, "DELETED", jsontext.encode(removed), removed, None)
        return removed

    def _forget_owners(self, key: tuple[str, str, str]) -> None:
        self._conn.execute(
            "DELETE FROM owner_refs WHERE kind_key=? AND namespace=? AND name=?", key
        )

    def _record(
        self, rv: int, kind: Kind, ns: str, type_: str, body: str, stored: dict,
        old: dict | None,
    ) -> None:
        old_body = None if old is None else jsontext.encode(old)
        self._conn.execute(
            "INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)",
            (rv, kind_key(kind), ns, type_, body, old_body),
        )
        self.changes.append(Change(rv, kind_key(kind), ns, type_, None, old_body, stored,
                                   None if old is None else frozen.freeze(old)))
        keep_after = rv - self._change_log_size
        step = max(1, min(64, self._change_log_size // 4))
        if keep_after > 0 and rv % step == 0:
            self._conn.execute("DELETE FROM changes WHERE rv <= ?", (keep_after,))
            self._conn.execute(
                "UPDATE counters SET value = max(value, ?) WHERE name='compacted'",
                (keep_after,),
            )


def _at_version(obj: dict, rv: int) -> dict:
    """A new top level of `obj` whose metadata carries resourceVersion `rv`."""
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}


@contextmanager
def write_transaction(
    conn: sqlite3.Connection, change_log_size: int, current: CurrentObjects | None = None
) -> Iterator[Transaction]:
    """A write transaction; once it commits, `current` holds what it wrote."""
    conn.execute("BEGIN IMMEDIATE")
    tx = Transaction(conn, change_log_size, current)
    try:
        yield tx
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if current is not None:
        current.apply(tx.written)


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[Transaction]:
    conn.execute("BEGIN")
    try:
        yield Transaction(conn, 0)
    finally:
        conn.execute("COMMIT")


def changes_after(
    conn: sqlite3.Connection, rv: int, limit: int = 1000,
    held: Mapping[int, Change] | None = None, kind_key: str | None = None,
) -> list[Change]:
    """The change log after `rv` (of one kind only, with `kind_key`: a watch's history
    then never reads the text of other kinds' changes). Changes found in `held` (this
    process's own writes, which carry their objects) are answered from there without
    reading their text; run it in a transaction when `held` is given, so both reads see
    one state of the log."""
    where, args = ("rv > ?", (rv, limit)) if kind_key is None else (
        "rv > ? AND kind_key = ?", (rv, kind_key, limit))
    if not held:
        rows = conn.execute(
            "SELECT rv, kind_key, namespace, type, body, old_body FROM changes "
            f"WHERE {where} ORDER BY rv LIMIT ?",
            args,
        )
        return [Change(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]
    heads = conn.execute(
        f"SELECT rv, kind_key, namespace, type FROM changes WHERE {where} ORDER BY rv LIMIT ?",
        args,
    ).fetchall()
    missing = [head[0] for head in heads if head[0] not in held]
    texts: dict[int, tuple[str, str | None]] = {}
    for start in range(0, len(missing), 500):
        part = missing[start:start + 500]
        texts.update((r[0], (r[1], r[2])) for r in conn.execute(
            f"SELECT rv, body, old_body FROM changes WHERE rv IN ({','.join('?' * len(part))})",
            part,
        ))
    return [held[head[0]] if head[0] in held else Change(*head, *texts[head[0]])
            for head in heads]
