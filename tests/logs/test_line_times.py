"""The store keeps the time each log line arrived, in step with the log itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cyclone.server.logs.linetimes import LineStamper, read, stamped_sync
from cyclone.server.logs.store import LogRef, LogStore, RunRef

REF = LogRef(RunRef("system", "p", "wf", "r1", uid="u1"), "build", "main")


def test_a_line_written_in_pieces_gets_one_time_at_its_start(tmp_path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer(REF)
    writer.append(b"one\ntw", 6)
    writer.append(b"o\nthree\n", 8)
    assert [offset for offset, _ in read(store.times_path(REF))] == [0, 4, 8]


def test_a_reopened_log_drops_the_times_of_lines_past_its_recorded_length(tmp_path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer(REF)
    writer.append(b"kept\n", 5)
    with open(store.path(REF), "ab") as log:
        log.write(b"lost in a crash\n")
    with open(store.times_path(REF), "a") as times:
        times.write("5 2026-01-01T00:00:00.000000Z\n")

    again = store.writer(REF)
    again.append(b"next\n", 5)
    assert store.read(REF) == b"kept\nnext\n"
    assert [offset for offset, _ in read(store.times_path(REF))] == [0, 5]


def test_lines_stored_before_times_were_kept_have_no_prefix_and_no_since(tmp_path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer(REF)
    writer.append(b"timed\n", 6)
    store.times_path(REF).unlink()
    hour_ago = datetime.now(UTC) - timedelta(hours=1)

    def lines(**view) -> bytes:
        stamper = LineStamper(store.times_path(REF), **view)
        return b"".join(stamped_sync(store.iter_bytes(REF), stamper))

    assert lines(timestamps=True, since=None) == b"timed\n"
    assert lines(timestamps=False, since=hour_ago) == b""
