"""Search across a run's stored logs: a literal, case-insensitive match over every line, with
the work bounded (hits per log, hits in all, query length) so a huge run cannot stall a page.

Matching is pure (`search_lines`, `search_logs`); `run_logs` reads the log store lazily, so a
search that reaches its caps stops reading.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from cyclone.server.logs.order import stage_log_order
from cyclone.server.logs.routes import is_sidecar
from cyclone.server.logs.store import LogRef, LogStore, RunRef

MAX_QUERY_LENGTH = 200
HITS_PER_LOG = 50
HITS_IN_ALL = 500
MAX_LINES_READ = 2_000_000
"""Lines read in all before a search gives up (about a second of work)."""
SNIPPET_LENGTH = 240
"""Characters of a matching line shown, around its first match."""

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"          # CSI (colours, cursor moves, erases)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (window titles, links)
    r"|\x1b[ -/]+[0-~]"                 # character sets and other nF escapes
    r"|\x1b[@-Z\\-_]"                   # other two-byte escapes
    r"|[\x00-\x08\x0b-\x1f\x7f]"        # control characters but tab
)


class SearchQueryError(ValueError):
    """A query that cannot be searched for (empty or too long)."""


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tabs stay)."""
    return _ESCAPES.sub("", text)


def check_query(query: str | None) -> str:
    text = (query or "").strip()
    if not text:
        raise SearchQueryError("type something to search for")
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchQueryError(f"the search is longer than {MAX_QUERY_LENGTH} characters")
    return text


@dataclass(frozen=True)
class LineHit:
    number: int
    """1-based, as the log viewer numbers lines."""
    text: str
    """The line without escapes, cut to about `SNIPPET_LENGTH` characters around the match."""


@dataclass
class LogHits:
    stage: str
    container: str
    sidecar: bool
    hits: list[LineHit] = field(default_factory=list)
    more: bool = False
    """Some matching lines of this log are left out (a cap was reached)."""


@dataclass
class SearchResult:
    query: str
    logs: list[LogHits]
    searched: int
    """How many logs were read."""
    truncated: bool = False
    """A cap (hits or lines read in all) was reached: the rest was not searched."""
    read: int = 0
    """How many lines were read."""

    @property
    def total(self) -> int:
        return sum(len(log.hits) for log in self.logs)


def snippet(line: str, start: int, length: int, width: int = SNIPPET_LENGTH) -> str:
    """`line` cut to `width` characters keeping the match at `start` (of `length`) in view."""
    if len(line) <= width:
        return line
    before = max(0, min(start - (width - length) // 2, len(line) - width))
    cut = line[before:before + width]
    return ("…" if before else "") + cut + ("…" if before + width < len(line) else "")


def search_lines(lines: Iterable[str], query: str, limit: int) -> tuple[list[LineHit], bool]:
    """The first `limit` lines containing `query` (literal, case-insensitive), and whether
    there are more. Reading stops at the first match past the limit."""
    needle = query.lower()
    hits: list[LineHit] = []
    for number, raw in enumerate(lines, start=1):
        line = strip_ansi(raw)
        at = line.lower().find(needle)
        if at < 0:
            continue
        if len(hits) >= limit:
            return hits, True
        hits.append(LineHit(number, snippet(line, at, len(needle))))
    return hits, False


class _Counted:
    """Lines of one log, at most `budget` of them, counting how many were read."""

    def __init__(self, lines: Iterable[str], budget: int) -> None:
        self.lines = lines
        self.budget = budget
        self.read = 0
        self.cut = False

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            if self.read >= self.budget:
                self.cut = True
                return
            self.read += 1
            yield line


def search_logs(logs: Iterable[tuple[str, str, Iterable[str]]], query: str, *,
                per_log: int = HITS_PER_LOG, in_all: int = HITS_IN_ALL,
                max_lines: int = MAX_LINES_READ) -> SearchResult:
    """Search each (stage, container, lines) in order; logs without hits are left out.
    Reading stops once `in_all` hits are found or `max_lines` lines were read."""
    query = check_query(query)
    result = SearchResult(query, [], 0)
    left = in_all
    for stage, container, lines in logs:
        if left <= 0 or result.read >= max_lines:
            result.truncated = True
            break
        result.searched += 1
        counted = _Counted(lines, max_lines - result.read)
        hits, more = search_lines(counted, query, min(per_log, left))
        result.read += counted.read
        result.truncated = result.truncated or counted.cut
        left -= len(hits)
        if hits:
            result.logs.append(LogHits(stage, container, is_sidecar(container), hits, more))
    return result


def text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a byte stream as text (invalid UTF-8 replaced), without line ends."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line.rstrip("\r")
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def run_logs(store: LogStore, run_ref: RunRef, run: dict | None
             ) -> Iterator[tuple[str, str, Iterator[str]]]:
    """Every stored log of a run: stages in the order they started, the workload container
    before sidecars; each read only when it is searched."""
    for stage in stage_log_order(run, store.stages(run_ref)):
        containers = store.containers(run_ref, stage)
        for container in sorted(containers, key=lambda name: (is_sidecar(name), name)):
            yield stage, container, text_lines(store.iter_bytes(LogRef(run_ref, stage,
                                                                         container)))
