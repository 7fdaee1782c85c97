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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cyclone.kube.embedded import jsontext
from cyclone.kube.kinds import Kind

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


@dataclass
class Change:
    """One entry of the change log, holding the objects as the JSON text stored.

    The text is parsed on first use (`object`, `old`), and every watcher gets a private
    copy by parsing it again (`object_copy`), which is several times cheaper than deep
    copying the parsed object: a large run status is written, fanned out and read often.
    """

    rv: int
    kind_key: str
    namespace: str
    type: str
    body: str
    old_body: str | None = None

    @cached_property
    def object(self) -> dict:
        return jsontext.decode(self.body)

    @cached_property
    def old(self) -> dict | None:
        return jsontext.decode(self.old_body) if self.old_body else None

    def object_copy(self) -> dict:
        return jsontext.decode(self.body)

    def old_copy(self) -> dict | None:
        return jsontext.decode(self.old_body) if self.old_body else None


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
    """Reads and writes inside one SQLite transaction; every write takes a new version."""

    def __init__(self, conn: sqlite3.Connection, change_log_size: int) -> None:
        self._conn = conn
        self._change_log_size = change_log_size
        self.changes: list[Change] = []

    def current_rv(self) -> int:
        return self._counter("resource_version")

    def changes_after(self, rv: int, limit: int = 1000) -> list[Change]:
        """The change log after `rv`, read on this transaction's own connection."""
        return changes_after(self._conn, rv, limit)

    def compacted_rv(self) -> int:
        return self._counter("compacted")

    def _counter(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
        return int(row[0])

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict | None:
        found = self.get_with_body(kind, namespace, name)
        return found[0] if found else None

    def get_with_body(
        self, kind: Kind, namespace: str | None, name: str
    ) -> tuple[dict, str] | None:
        """The object and the JSON text it was parsed from."""
        ns = (namespace or "") if kind.namespaced else ""
        row = self._conn.execute(
            "SELECT body FROM objects WHERE kind_key=? AND namespace=? AND name=?",
            (kind_key(kind), ns, name),
        ).fetchone()
        return (jsontext.decode(row[0]), row[0]) if row else None

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

    def put(
        self, kind: Kind, obj: dict, old: dict | None, *, old_body: str | None = None
    ) -> dict:
        """Store an object (ADDED when `old` is None, else MODIFIED) under a new version.

        `old_body` is the stored text of `old` when the caller has it (saves encoding it).
        """
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        body = jsontext.encode(obj)
        ns = _namespace_of(kind, obj)
        key = (kind_key(kind), ns, obj["metadata"]["name"])
        owners = _owner_uids(obj)
        self._conn.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?)",
            (*key, rv, ",".join(owners), body),
        )
        if old is None or _owner_uids(old) != owners:
            self._forget_owners(key)
            self._conn.executemany(
                "INSERT INTO owner_refs VALUES (?, ?, ?, ?)", [(uid, *key) for uid in owners]
            )
        self._record(rv, kind, ns, "ADDED" if old is None else "MODIFIED", body, old, old_body)
        return obj

    def remove(self, kind: Kind, obj: dict) -> dict:
        """Delete an object; the DELETED event carries it at the deletion's version."""
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        ns = _namespace_of(kind, obj)
        key = (kind_key(kind), ns, obj["metadata"]["name"])
        self._conn.execute("DELETE FROM objects WHERE kind_key=? AND namespace=? AND name=?", key)
        self._forget_owners(key)
        self._record(rv, kind, ns, "DELETED", jsontext.encode(obj), None)
        return obj

    def _forget_owners(self, key: tuple[str, str, str]) -> None:
        self._conn.execute(
            "DELETE FROM owner_refs WHERE kind_key=? AND namespace=? AND name=?", key
        )

    def _record(
        self, rv: int, kind: Kind, ns: str, type_: str, body: str, old: dict | None,
        old_body: str | None = None,
    ) -> None:
        if old is None:
            old_body = None
        elif old_body is None:
            old_body = jsontext.encode(old)
        self._conn.execute(
            "INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)",
            (rv, kind_key(kind), ns, type_, body, old_body),
        )
        self.changes.append(Change(rv, kind_key(kind), ns, type_, body, old_body))
        keep_after = rv - self._change_log_size
        step = max(1, min(64, self._change_log_size // 4))
        if keep_after > 0 and rv % step == 0:
            self._conn.execute("DELETE FROM changes WHERE rv <= ?", (keep_after,))
            self._conn.execute(
                "UPDATE counters SET value = max(value, ?) WHERE name='compacted'",
                (keep_after,),
            )


@contextmanager
def write_transaction(
    conn: sqlite3.Connection, change_log_size: int
) -> Iterator[Transaction]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield Transaction(conn, change_log_size)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[Transaction]:
    conn.execute("BEGIN")
    try:
        yield Transaction(conn, 0)
    finally:
        conn.execute("COMMIT")


def changes_after(conn: sqlite3.Connection, rv: int, limit: int = 1000) -> list[Change]:
    rows = conn.execute(
        "SELECT rv, kind_key, namespace, type, body, old_body FROM changes "
        "WHERE rv > ? ORDER BY rv LIMIT ?",
        (rv, limit),
    )
    return [Change(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]
