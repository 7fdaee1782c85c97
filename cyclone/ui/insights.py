"""What a run's timing says: the critical path through its DAG and the stages markedly
slower than their recent median.

Pure functions over plain run and workflow dicts (camelCase keys as stored); `now` is a
parameter wherever elapsed time of a running stage matters, so results are reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from statistics import median
from typing import Any

from cyclone.engine.core.phases import SUCCEEDED
from cyclone.ui.dag_view import stage_phase
from cyclone.ui.durations import stage_seconds, stage_window
from cyclone.ui.run_summary import run_phase
from cyclone.ui.templating import format_seconds, parse_time

TIMES = "\N{MULTIPLICATION SIGN}"


def stage_statuses(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`status.stages` of a run: stage name → its stage status (may be empty)."""
    stages = (run.get("status") or {}).get("stages") or {}
    return {name: entry for name, entry in stages.items() if isinstance(entry, dict)}


def workflow_depends(workflow: Mapping[str, Any] | None, run: Mapping[str, Any]
                     ) -> dict[str, list[str]]:
    """Stage name → the stages it depends on: the workflow's spec, else what the run's
    status recorded."""
    depends: dict[str, list[str]] = {}
    for item in ((workflow or {}).get("spec") or {}).get("stages") or []:
        if isinstance(item, dict) and item.get("name"):
            depends[item["name"]] = [str(d) for d in item.get("depends") or []]
    for name, entry in stage_statuses(run).items():
        depends.setdefault(name, [str(d) for d in entry.get("depends") or []])
    return depends


def critical_path(run: Mapping[str, Any], workflow: Mapping[str, Any] | None = None, *,
                  now: datetime | None = None) -> list[str]:
    """The chain of stages that decided the run's duration, first to last.

    It is the longest path through the dependencies, weighing each started stage by its
    actual duration (elapsed time so far for one still running); stages that never
    started are not on it. Between paths of equal length the one ending later wins, then
    the one with more stages (times are stored to the second, so a chain of quick stages
    weighs nothing), then the one whose names sort first, so the answer is deterministic.
    """
    now = now or datetime.now(UTC)
    statuses = stage_statuses(run)
    windows = {name: w for name, entry in statuses.items()
               if (w := stage_window(entry, now)) is not None}
    if not windows:
        return []
    depends = workflow_depends(workflow, run)
    best: dict[str, tuple[float, datetime, tuple[str, ...]]] = {}

    def longest(name: str, visiting: frozenset[str]) -> tuple[float, datetime, tuple[str, ...]]:
        if name in best:
            return best[name]
        started, finished, _ = windows[name]
        own = (finished - started).total_seconds()
        chosen: tuple[float, datetime, tuple[str, ...]] | None = None
        for upstream in sorted(set(depends.get(name, ())) & windows.keys()):
            if upstream in visiting:
                continue
            candidate = longest(upstream, visiting | {name})
            if chosen is None or _better(candidate, chosen):
                chosen = candidate
        total, _, path = chosen or (0.0, started, ())
        best[name] = (total + own, finished, (*path, name))
        return best[name]

    ends = [longest(name, frozenset()) for name in sorted(windows)]
    winner = ends[0]
    for candidate in ends[1:]:
        if _better(candidate, winner):
            winner = candidate
    return list(winner[2])


def _better(a: tuple[float, datetime, tuple[str, ...]],
            b: tuple[float, datetime, tuple[str, ...]]) -> bool:
    """Whether path `a` beats `b`: longer, then ending later, then more stages, then names
    sorting first. Lengths within a millisecond count as equal."""
    if abs(a[0] - b[0]) > 1e-3:
        return a[0] > b[0]
    if a[1] != b[1]:
        return a[1] > b[1]
    if len(a[2]) != len(b[2]):
        return len(a[2]) > len(b[2])
    return a[2] < b[2]


def run_name(run: Mapping[str, Any]) -> str:
    return str((run.get("metadata") or {}).get("name") or "")


def run_created(run: Mapping[str, Any]) -> datetime | None:
    return parse_time((run.get("metadata") or {}).get("creationTimestamp"))


def recent_successes(run: Mapping[str, Any], history: Iterable[Mapping[str, Any]],
                     window: int) -> list[Mapping[str, Any]]:
    """The `window` most recent Succeeded runs of `history` created before `run` (the run
    itself left out), newest first."""
    created = run_created(run)
    name = run_name(run)
    earlier = [other for other in history
               if run_phase(other) == SUCCEEDED and run_name(other) != name
               and (created is None or (run_created(other) or created) <= created)]
    earlier.sort(key=lambda other: (run_created(other) or datetime.min.replace(tzinfo=UTC),
                                    run_name(other)), reverse=True)
    return earlier[:max(window, 0)]


def regressions(run: Mapping[str, Any], history: Iterable[Mapping[str, Any]], *,
                factor: float = 1.5, min_seconds: float = 5, window: int = 10,
                min_runs: int = 3, now: datetime | None = None) -> dict[str, str]:
    """Stages of `run` markedly slower than their median over the recent successful runs
    of the workflow: stage name → e.g. "2.4x slower than the median of 10 runs (12s)".

    A stage is flagged when its duration (elapsed so far while it runs) is at least
    `factor` times its median over the last `window` Succeeded runs created before this
    one, AND at least `min_seconds` longer, so that 0.2s → 0.5s is not news. A stage with
    fewer than `min_runs` earlier successful durations has no median to speak of.
    """
    now = now or datetime.now(UTC)
    earlier = recent_successes(run, history, window)
    flagged: dict[str, str] = {}
    for name, entry in stage_statuses(run).items():
        seconds = stage_seconds(entry, now)
        if seconds is None:
            continue
        samples = [s for other in earlier
                   if stage_phase(other_entry := stage_statuses(other).get(name)) == SUCCEEDED
                   and (s := stage_seconds(other_entry, now)) is not None]
        if len(samples) < max(min_runs, 1):
            continue
        typical = median(samples)
        if seconds - typical < min_seconds or seconds < factor * typical:
            continue
        times = f"{seconds / typical:.1f}{TIMES} slower" if typical > 0 else "slower"
        flagged[name] = (f"{times} than the median of {len(samples)} runs "
                         f"({format_seconds(typical)})")
    return flagged
