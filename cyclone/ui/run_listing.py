"""What the pages keep and ask of a run in the run index: a small summary per run, the runs
list's filter, its paging cursors and the sorted lists a page is cut from.

Pure: no I/O. `cyclone.ui.run_index` keeps these current from the cluster's watch.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from cyclone.api import keys, stagechunks
from cyclone.engine.core.phases import TERMINAL_PHASES
from cyclone.ui.run_summary import run_phase, trigger_of

TRIGGER_KINDS = ("manual", "cron", "webhook")
"""What started a run, as `run_summary.trigger_of` classifies it: by hand, a cron trigger,
an SCM webhook. A run another starter annotated keeps that starter's annotation."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What the pages show of a run."""

    namespace: str
    name: str
    project: str
    workflow: str
    phase: str
    created: str
    started: str
    finished: str
    trigger: str
    """One of TRIGGER_KINDS (or another starter's own annotation)."""
    message: str
    stages: int
    version: str = ""

    @property
    def tenant(self) -> str:
        return self.namespace.removeprefix(keys.TENANT_NAMESPACE_PREFIX)

    @property
    def order(self) -> tuple[str, str]:
        return (self.created, self.name)


def _utc_text(value: str | None) -> str:
    """RFC 3339 text normalised to `YYYY-MM-DDTHH:MM:SSZ` so that text order is time order."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summarize(run: dict) -> RunSummary:
    """The summary of a WorkflowRun object."""
    meta = run.get("metadata") or {}
    labels = meta.get("labels") or {}
    status = run.get("status") or {}
    overall = status.get("overall") or {}
    phase = run_phase(run)
    finished = ""
    if phase in TERMINAL_PHASES:
        finished = _utc_text(status.get("completionTime") or overall.get("lastTransitionTime"))
    return RunSummary(
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        project=labels.get(keys.LABEL_PROJECT, ""),
        workflow=labels.get(keys.LABEL_WORKFLOW, ""),
        phase=phase,
        created=_utc_text(meta.get("creationTimestamp")),
        started=_utc_text(overall.get("startTime")),
        finished=finished,
        trigger=trigger_of(run).kind,
        message=str(overall.get("message") or overall.get("reason") or "")[:500],
        stages=len(status.get("stages") or {}) or sum(
            (status.get(stagechunks.COUNTS_FIELD) or {}).values()),
        version=str(meta.get("resourceVersion") or ""),
    )


@dataclass(frozen=True)
class RunFilter:
    """What a runs list shows; every field empty means everything."""

    phase: str = ""
    project: str = ""
    workflow: str = ""
    trigger: str = ""
    since: date | None = None
    until: date | None = None
    search: str = ""

    def matches(self, run: RunSummary) -> bool:
        if self.phase and run.phase != self.phase:
            return False
        if self.project and run.project != self.project:
            return False
        if self.workflow and run.workflow != self.workflow:
            return False
        if self.trigger and run.trigger.lower() != self.trigger.lower():
            return False
        if self.since and run.created < self.since.isoformat():
            return False
        if self.until and run.created >= day_after(self.until):
            return False
        return not self.search or self.search.lower() in run.name.lower()


def day_after(day: date) -> str:
    return date.fromordinal(day.toordinal() + 1).isoformat() if day != date.max else "~"


def encode_cursor(run: RunSummary) -> str:
    raw = f"{run.created}|{run.name}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    """The (created, name) position a cursor names, or None when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    created, sep, name = raw.partition("|")
    return (created, name) if sep and name else None


@dataclass
class Page:
    """One page of a runs list, newest first."""

    runs: list[RunSummary]
    newer: str | None
    """Cursor of the page before (newer runs), None on the first page."""
    older: str | None
    """Cursor of the page after (older runs), None on the last page."""


class OrderedKeys:
    """Runs of one namespace (or one project/workflow in it) sorted oldest first."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []

    def add(self, key: tuple[str, str]) -> None:
        at = bisect.bisect_left(self.keys, key)
        if at == len(self.keys) or self.keys[at] != key:
            self.keys.insert(at, key)

    def remove(self, key: tuple[str, str]) -> None:
        at = bisect.bisect_left(self.keys, key)
        if at < len(self.keys) and self.keys[at] == key:
            del self.keys[at]

    def older_than(self, key: tuple[str, str] | None, floor: str) -> Iterator[tuple[str, str]]:
        """Keys strictly before `key` (all when None), newest first, down to `floor`."""
        at = len(self.keys) if key is None else bisect.bisect_left(self.keys, key)
        stop = bisect.bisect_left(self.keys, (floor, "")) if floor else 0
        for i in range(at - 1, stop - 1, -1):
            yield self.keys[i]

    def newer_than(self, key: tuple[str, str], ceiling: str) -> Iterator[tuple[str, str]]:
        """Keys strictly after `key`, oldest first, up to (not including) `ceiling`."""
        at = bisect.bisect_right(self.keys, key)
        stop = bisect.bisect_left(self.keys, (ceiling, "")) if ceiling else len(self.keys)
        for i in range(at, stop):
            yield self.keys[i]


@dataclass
class NamespaceRuns:
    runs: dict[str, RunSummary] = field(default_factory=dict)
    all: OrderedKeys = field(default_factory=OrderedKeys)
    by_project: dict[str, OrderedKeys] = field(default_factory=dict)
    by_workflow: dict[tuple[str, str], OrderedKeys] = field(default_factory=dict)

    def lists_of(self, run: RunSummary) -> tuple[OrderedKeys, ...]:
        return (self.all,
                self.by_project.setdefault(run.project, OrderedKeys()),
                self.by_workflow.setdefault((run.project, run.workflow), OrderedKeys()))

    def put(self, run: RunSummary) -> RunSummary | None:
        old = self.runs.get(run.name)
        if old is not None and (old.order != run.order or old.project != run.project
                                or old.workflow != run.workflow):
            self.drop(old.name)
            old = None
        self.runs[run.name] = run
        if old is None:
            for ordered in self.lists_of(run):
                ordered.add(run.order)
        return old

    def drop(self, name: str) -> RunSummary | None:
        old = self.runs.pop(name, None)
        if old is not None:
            for ordered in self.lists_of(old):
                ordered.remove(old.order)
            if not self.by_workflow[(old.project, old.workflow)].keys:
                del self.by_workflow[(old.project, old.workflow)]
            if not self.by_project[old.project].keys:
                del self.by_project[old.project]
        return old

    def base_for(self, where: RunFilter) -> OrderedKeys:
        """The narrowest sorted list that holds every match of `where`."""
        if where.project and where.workflow:
            return self.by_workflow.get((where.project, where.workflow), OrderedKeys())
        if where.project:
            return self.by_project.get(where.project, OrderedKeys())
        return self.all
