"""When each stored log line arrived, kept beside the log so `logs --timestamps` and
`--since` can answer for logs stored long ago.

A container writes its output straight into a file on its node, which records no time per
line; the server notes the time it stored each line (within the follow poll of when the
container wrote it, or later for a log read after the fact, e.g. by a restarted server).
The record is `{container}.log.times`: one `<offset> <RFC 3339 time>` line per log line,
offset being where the line starts in the stored log. It is written before the log's
state, and entries past the recorded length are dropped on reopen, like the log itself.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from cyclone.engine.core.timefmt import parse_rfc3339
from cyclone.server.private_files import open_private

TIMES_SUFFIX = ".log.times"


def format_time(moment: datetime) -> str:
    """``2026-12-05T04:22:51.123456Z`` (UTC, microseconds, as `kubectl logs --timestamps`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def line_starts(data: bytes, base: int, at_line_start: bool) -> list[int]:
    """Offsets (in the whole log) where the lines begun in `data` start; `data` is stored
    at `base`, right after a newline when `at_line_start`."""
    starts = [base] if at_line_start and data else []
    position = data.find(b"\n")
    while position != -1 and position + 1 < len(data):
        starts.append(base + position + 1)
        position = data.find(b"\n", position + 1)
    return starts


def record(path: Path, starts: Iterable[int], moment: datetime) -> None:
    stamp = format_time(moment)
    text = "".join(f"{offset} {stamp}\n" for offset in starts)
    if not text:
        return
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    with os.fdopen(fd, "a") as f:
        f.write(text)


def read(path: Path) -> list[tuple[int, str]]:
    """(offset, time) of every recorded line start, in order; empty when none is recorded."""
    return read_from(path, 0)[0]


def read_from(path: Path, position: int) -> tuple[list[tuple[int, str]], int]:
    """The entries recorded from byte `position` of the record on (whole lines only), and
    the position after them."""
    try:
        with open(path, "rb") as f:
            f.seek(position)
            data = f.read()
    except FileNotFoundError:
        return [], position
    complete = data[: data.rfind(b"\n") + 1]
    entries: list[tuple[int, str]] = []
    for line in complete.decode("ascii", errors="replace").splitlines():
        offset, _, stamp = line.partition(" ")
        if offset.isdigit() and stamp:
            entries.append((int(offset), stamp))
    return entries, position + len(complete)


def cut_back(path: Path, length: int) -> None:
    """Drop the entries of lines at or past `length` (written before a crash)."""
    entries = read(path)
    kept = [(offset, stamp) for offset, stamp in entries if offset < length]
    if len(kept) == len(entries):
        return
    tmp = path.with_name(path.name + ".tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{offset} {stamp}\n" for offset, stamp in kept))
    os.replace(tmp, path)


class LineStamper:
    """Turns a log's bytes, read from offset 0, into its lines, each prefixed with its time
    (`timestamps`) and dropped when older than `since`. Lines whose time was never recorded
    (stored before times were kept) have no prefix and are dropped by `since`."""

    def __init__(self, times_path: Path, *, timestamps: bool, since: datetime | None) -> None:
        self._path = times_path
        self._timestamps = timestamps
        self._since = since
        self._times: dict[int, str] = {}
        self._known_up_to = -1
        self._read_position = 0
        self._pending = b""
        self._pending_start = 0

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        data = self._pending + chunk
        start = self._pending_start
        lines = data.split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            out = self._line(start, line + b"\n")
            start += len(line) + 1
            if out:
                yield out
        self._pending_start = start

    def flush(self) -> Iterator[bytes]:
        if self._pending:
            out = self._line(self._pending_start, self._pending)
            self._pending_start += len(self._pending)
            self._pending = b""
            if out:
                yield out

    def _time_of(self, offset: int) -> str | None:
        if offset > self._known_up_to:
            entries, self._read_position = read_from(self._path, self._read_position)
            self._times.update(entries)
            self._known_up_to = max(entries[-1][0] if entries else -1, offset)
        return self._times.pop(offset, None)

    def _line(self, offset: int, line: bytes) -> bytes:
        stamp = self._time_of(offset)
        if self._since is not None and (stamp is None or parse_rfc3339(stamp) < self._since):
            return b""
        if self._timestamps and stamp is not None:
            return stamp.encode() + b" " + line
        return line


async def stamped(chunks: AsyncIterator[bytes], stamper: LineStamper) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        for out in stamper.feed(chunk):
            yield out
    for out in stamper.flush():
        yield out


def stamped_sync(chunks: Iterable[bytes], stamper: LineStamper) -> Iterator[bytes]:
    for chunk in chunks:
        yield from stamper.feed(chunk)
    yield from stamper.flush()
