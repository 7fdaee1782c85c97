"""Project and workflow statistics: runs per day by phase, and run durations."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Depends, Query

from cyclone.engine.core.phases import ALL_PHASES, PENDING, SUCCEEDED, TERMINAL_PHASES
from cyclone.kube import errors, kinds
from cyclone.server.scopes import Scope, project_scope, workflow_scope

router = APIRouter(tags=["stats"])


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _phase(run: dict) -> str:
    return (((run.get("status") or {}).get("overall") or {}).get("phase")) or PENDING


def _duration_seconds(run: dict) -> float | None:
    status = run.get("status") or {}
    overall = status.get("overall") or {}
    if overall.get("phase") not in TERMINAL_PHASES:
        return None
    start = _parse_time(overall.get("startTime")) or _parse_time(
        run["metadata"].get("creationTimestamp"))
    end = _parse_time(status.get("completionTime")) or _parse_time(
        overall.get("lastTransitionTime"))
    if not start or not end or end < start:
        return None
    return (end - start).total_seconds()


def run_stats(runs: list[dict], start: date, end: date) -> dict:
    """Counts by phase overall and per day in [start, end], and the terminal durations."""
    per_day: dict[date, Counter] = defaultdict(Counter)
    overview: Counter = Counter()
    durations: list[float] = []
    for run in runs:
        created = _parse_time(run["metadata"].get("creationTimestamp"))
        if created is None or not (start <= created.date() <= end):
            continue
        phase = _phase(run)
        overview[phase] += 1
        per_day[created.date()][phase] += 1
        seconds = _duration_seconds(run)
        if seconds is not None:
            durations.append(seconds)
    days = []
    day = start
    while day <= end:
        counts = per_day.get(day, Counter())
        days.append({"date": day.isoformat(), "total": sum(counts.values()),
                     "phases": {p: counts.get(p, 0) for p in ALL_PHASES}})
        if day == date.max:
            break
        day += timedelta(days=1)
    total = sum(overview.values())
    finished = sum(overview.get(p, 0) for p in TERMINAL_PHASES)
    return {
        "overview": {"total": total, "phases": {p: overview.get(p, 0) for p in ALL_PHASES},
                     "successRatio": round(overview.get(SUCCEEDED, 0) / finished, 4)
                     if finished else None},
        "details": days,
        "durations": {
            "count": len(durations),
            "averageSeconds": round(sum(durations) / len(durations), 3) if durations else None,
            "minSeconds": min(durations) if durations else None,
            "maxSeconds": max(durations) if durations else None,
        },
    }


def _window(start_time: str | None, end_time: str | None) -> tuple[date, date]:
    end = _parse_time(end_time) if end_time else datetime.now(UTC)
    if end is None:
        raise errors.BadRequest(f"endTime {end_time!r} is not an RFC 3339 time or a date")
    try:
        start = _parse_time(start_time) if start_time else end - timedelta(days=6)
    except OverflowError as exc:
        raise errors.BadRequest(f"endTime {end_time!r} is out of range") from exc
    if start is None:
        raise errors.BadRequest(f"startTime {start_time!r} is not an RFC 3339 time or a date")
    if start > end:
        raise errors.BadRequest("startTime is after endTime")
    if (end - start).days > 366:
        raise errors.BadRequest("the window of statistics is at most 366 days")
    return start.date(), end.date()


_START = Query(None, max_length=64, description="First day (RFC 3339 time or date); "
               "default: six days before endTime")
_END = Query(None, max_length=64, description="Last day (RFC 3339 time or date); default: now")


@router.get("/projects/{project}/stats", summary="Statistics of a project's runs")
async def project_stats(startTime: str | None = _START, endTime: str | None = _END,
                        scope: Scope = Depends(project_scope)) -> dict:
    start, end = _window(startTime, endTime)
    runs = await scope.cluster.list(kinds.WORKFLOW_RUN, scope.namespace,
                                    label_selector=scope.selector)
    workflows = await scope.cluster.list(kinds.WORKFLOW, scope.namespace,
                                         label_selector=scope.selector)
    return {"project": scope.project, "workflowCount": len(workflows.items),
            **run_stats(runs.items, start, end)}


@router.get("/projects/{project}/workflows/{workflow}/stats",
            summary="Statistics of a workflow's runs")
async def workflow_stats(startTime: str | None = _START, endTime: str | None = _END,
                         scope: Scope = Depends(workflow_scope)) -> dict:
    start, end = _window(startTime, endTime)
    runs = await scope.cluster.list(kinds.WORKFLOW_RUN, scope.namespace,
                                    label_selector=scope.selector)
    return {"project": scope.project, "workflow": scope.workflow,
            **run_stats(runs.items, start, end)}


__all__ = ["router", "run_stats"]
