"""The log store: one file per stage container under the server's data directory.

Layout: `<root>/{tenant}/{project}/{workflow}/{run}/{uid}/{stage}/{container}.log` (the
run's uid, so a run created again under a deleted run's name starts clean), beside it a
`{container}.log.state` JSON file holding how far the source (the cluster's log) has been
read, how many bytes of the stored file that covers, and whether the log is complete.
The state is written atomically after each append; on reopen the file is cut back to the
recorded length, so a crash between the two writes never duplicates a chunk. Directories
are 0700 and files 0600 (`cyclone.server.private_files`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cyclone.server.logs import linetimes
from cyclone.server.metrics import LOG_BYTES_STORED
from cyclone.server.private_files import (
    make_private,
    open_private,
    private_mkdir,
    write_private_text,
)

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_LOG_SUFFIX = ".log"
_STATE_SUFFIX = ".log.state"
_READ_CHUNK = 64 * 1024


class InvalidLogName(ValueError):
    """A path segment (tenant, project, …) that cannot name a log."""


def check_segment(value: str, what: str) -> str:
    if not _SEGMENT.match(value) or value in {".", ".."}:
        raise InvalidLogName(f"invalid {what} name {value!r}")
    return value


@dataclass(frozen=True)
class RunRef:
    tenant: str
    project: str
    workflow: str
    run: str
    uid: str = ""
    """The run's metadata.uid: the data of a run deleted and created again under the same
    name is kept apart (see `cyclone.server.logs.rundata`)."""

    def __post_init__(self) -> None:
        for what in ("tenant", "project", "workflow", "run"):
            check_segment(getattr(self, what), what)
        if self.uid:
            check_segment(self.uid, "uid")

    def parts(self) -> tuple[str, ...]:
        return (self.tenant, self.project, self.workflow, self.run)

    def storage_parts(self) -> tuple[str, ...]:
        """Where the run's data lives in a store, relative to its root."""
        return (*self.parts(), self.uid) if self.uid else self.parts()


@dataclass(frozen=True)
class LogRef:
    run_ref: RunRef
    stage: str
    container: str

    def __post_init__(self) -> None:
        check_segment(self.stage, "stage")
        check_segment(self.container, "container")


@dataclass
class LogState:
    source_offset: int = 0
    stored_bytes: int = 0
    complete: bool = False
    source: str = ""
    """Which pod the offsets refer to: a retried stage's next pod starts a new source."""
    finished_sources: list[str] = field(default_factory=list)

    def finished(self, source: str) -> bool:
        return source in self.finished_sources or (
            self.complete and self.source in ("", source))


class LogWriter:
    """Appends masked log bytes and records the matching source offset."""

    def __init__(self, store: LogStore, ref: LogRef) -> None:
        self._store = store
        self.ref = ref
        self.path = store.path(ref)
        self.state_path = self.path.with_name(self.path.name[: -len(_LOG_SUFFIX)] + _STATE_SUFFIX)
        self.times_path = store.times_path(ref)
        private_mkdir(self.path.parent)
        self.state = _read_state(self.state_path)
        self._cut_back_to_recorded_length()
        linetimes.cut_back(self.times_path, self.state.stored_bytes)
        self._at_line_start = self.state.stored_bytes == 0 or self._last_byte() == b"\n"

    @property
    def source_offset(self) -> int:
        return self.state.source_offset

    @property
    def complete(self) -> bool:
        return self.state.complete

    def append(self, data: bytes, source_bytes: int) -> None:
        """Store `data`, which stands for the next `source_bytes` bytes of the source log."""
        if data:
            self._write(data)
        self.state.stored_bytes += len(data)
        LOG_BYTES_STORED.labels(self.ref.run_ref.tenant, self.ref.run_ref.project).inc(len(data))
        self.state.source_offset += source_bytes
        self._save_state()
        if data:
            self._store.notify(self.ref)

    def begin_source(self, source: str, banner: bytes = b"") -> None:
        """Follow `source` from its start; `banner` separates it from an earlier source."""
        if self.state.source == source:
            return
        if self.state.source and banner:
            self._write(banner)
            self.state.stored_bytes += len(banner)
        self.state.source = source
        self.state.source_offset = 0
        self.state.complete = False
        self._save_state()
        if banner:
            self._store.notify(self.ref)

    def finish(self) -> None:
        self.state.complete = True
        if self.state.source and self.state.source not in self.state.finished_sources:
            self.state.finished_sources.append(self.state.source)
        self._save_state()
        self._store.notify(self.ref)

    def _write(self, data: bytes) -> None:
        """Append `data` at the recorded length, noting when each line in it began."""
        starts = linetimes.line_starts(data, self.state.stored_bytes, self._at_line_start)
        linetimes.record(self.times_path, starts, datetime.now(UTC))
        with open(self.path, "ab") as f:
            f.write(data)
        self._at_line_start = data.endswith(b"\n")

    def _last_byte(self) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(self.state.stored_bytes - 1)
            return f.read(1)

    def _cut_back_to_recorded_length(self) -> None:
        if not self.path.exists():
            os.close(open_private(self.path, os.O_WRONLY | os.O_CREAT))
            return
        if self.path.stat().st_size > self.state.stored_bytes:
            with open(self.path, "r+b") as f:
                f.truncate(self.state.stored_bytes)

    def _save_state(self) -> None:
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        write_private_text(tmp, json.dumps(self.state.__dict__))
        os.replace(tmp, self.state_path)


def _read_state(path: Path) -> LogState:
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return LogState()
    return LogState(
        source_offset=int(raw.get("source_offset", 0)),
        stored_bytes=int(raw.get("stored_bytes", 0)),
        complete=bool(raw.get("complete", False)),
        source=str(raw.get("source", "")),
        finished_sources=[str(x) for x in raw.get("finished_sources") or []],
    )


class LogStore:
    """Stored container logs of every run, readable while being written."""

    def __init__(self, root: str | os.PathLike[str], *, poll_interval: float = 0.5) -> None:
        self.root = Path(root)
        make_private(self.root)
        self.poll_interval = poll_interval
        self._waiters: dict[LogRef, set[asyncio.Event]] = {}

    def run_dir(self, ref: RunRef) -> Path:
        return self.root.joinpath(*ref.storage_parts())

    def path(self, ref: LogRef) -> Path:
        return self.run_dir(ref.run_ref) / ref.stage / f"{ref.container}{_LOG_SUFFIX}"

    def times_path(self, ref: LogRef) -> Path:
        """Where the arrival time of each line of the log is kept (`linetimes`)."""
        return self.run_dir(ref.run_ref) / ref.stage / f"{ref.container}{linetimes.TIMES_SUFFIX}"

    def writer(self, ref: LogRef) -> LogWriter:
        return LogWriter(self, ref)

    def exists(self, ref: LogRef) -> bool:
        return self.path(ref).exists()

    def state(self, ref: LogRef) -> LogState:
        path = self.path(ref)
        return _read_state(path.with_name(path.name[: -len(_LOG_SUFFIX)] + _STATE_SUFFIX))

    def stages(self, ref: RunRef) -> list[str]:
        run_dir = self.run_dir(ref)
        if not run_dir.is_dir():
            return []
        return sorted(p.name for p in run_dir.iterdir() if p.is_dir())

    def containers(self, ref: RunRef, stage: str) -> list[str]:
        stage_dir = self.run_dir(ref) / check_segment(stage, "stage")
        if not stage_dir.is_dir():
            return []
        return sorted(
            p.name[: -len(_LOG_SUFFIX)] for p in stage_dir.iterdir() if p.name.endswith(_LOG_SUFFIX)
        )

    def read(self, ref: LogRef) -> bytes:
        """The stored log (only the part the state vouches for)."""
        path = self.path(ref)
        with open(path, "rb") as f:
            return f.read(self._readable_bytes(ref))

    def iter_bytes(self, ref: LogRef) -> Iterator[bytes]:
        """The stored log in chunks, without holding it all in memory."""
        remaining = self._readable_bytes(ref)
        with open(self.path(ref), "rb") as f:
            while remaining > 0:
                chunk = f.read(min(remaining, _READ_CHUNK))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def delete_run(self, ref: RunRef) -> None:
        import shutil

        shutil.rmtree(self.run_dir(ref), ignore_errors=True)

    def notify(self, ref: LogRef) -> None:
        for event in self._waiters.get(ref, ()):
            event.set()

    async def follow(
        self, ref: LogRef, give_up: Callable[[], Awaitable[bool]] | None = None
    ) -> AsyncIterator[bytes]:
        """The log from the start, then what is appended, until it is complete.

        Waits for the log to appear. Wakes on appends made in this process and polls the
        files otherwise, so a writer in another process is followed too. `give_up`, asked
        whenever a poll finds nothing new, ends the stream early when it answers True (the
        container is known to have ended but its log will never be completed).
        """
        event = asyncio.Event()
        self._waiters.setdefault(ref, set()).add(event)
        try:
            offset = 0
            last_pass = False
            while True:
                event.clear()
                state = self.state(ref)
                if self.exists(ref):
                    readable = self._readable_bytes(ref)
                    while offset < readable:
                        chunk = self._read_range(ref, offset, min(readable - offset, _READ_CHUNK))
                        if not chunk:
                            break
                        offset += len(chunk)
                        yield chunk
                    if state.complete and offset >= state.stored_bytes:
                        return
                if last_pass:
                    return
                try:
                    await asyncio.wait_for(event.wait(), self.poll_interval)
                except TimeoutError:
                    last_pass = give_up is not None and await give_up()
        finally:
            waiters = self._waiters.get(ref)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[ref]

    def _readable_bytes(self, ref: LogRef) -> int:
        size = self.path(ref).stat().st_size
        return min(size, self.state(ref).stored_bytes)

    def _read_range(self, ref: LogRef, offset: int, length: int) -> bytes:
        with open(self.path(ref), "rb") as f:
            f.seek(offset)
            return f.read(length)
