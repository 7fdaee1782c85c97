"""The engine's run metrics and run logs.

Counters and histograms are fed by `observe_status_write`, called for every status the
engine writes to a run; the gauges of runs by phase are computed at scrape time from the
run caches of the engines running in this process (`tracking_runs`), so they are right after
a restart too. Labels are the run's namespace, project and phase; never a run name, which
would make a series per run.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections import Counter as Tally
from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cyclone.api import keys
from cyclone.engine.controllers.caches import ObjectCache
from cyclone.engine.core.phases import PENDING, is_terminal
from cyclone.engine.core.transitions import run_transition

log = logging.getLogger("cyclone.engine.runs")

DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600, 86400)
RUN_LABELS = ["namespace", "project"]
PHASE_LABELS = [*RUN_LABELS, "phase"]

RUNS_STARTED = Counter(
    "cyclone_runs_started_total", "Runs the engine started (that left Pending).", RUN_LABELS)
RUNS_FINISHED = Counter(
    "cyclone_runs_finished_total", "Runs that ended, by final phase.", PHASE_LABELS)
RUN_DURATION = Histogram(
    "cyclone_run_duration_seconds", "From a run's start to its end, by final phase.",
    PHASE_LABELS, buckets=DURATION_BUCKETS)
STAGES_FINISHED = Counter(
    "cyclone_stages_finished_total",
    "Stages of runs that ended, by final phase (those that never started included).",
    PHASE_LABELS)
STAGE_DURATION = Histogram(
    "cyclone_stage_duration_seconds",
    "From a stage's start to its end, by final phase (stages that started only).",
    PHASE_LABELS, buckets=DURATION_BUCKETS)


def _labels(run: dict) -> tuple[str, str]:
    meta = run.get("metadata") or {}
    return meta.get("namespace") or "", (meta.get("labels") or {}).get(keys.LABEL_PROJECT, "")


def _phase(run: dict) -> str:
    return ((run.get("status") or {}).get("overall") or {}).get("phase") or PENDING


def observe_status_write(before: dict, after: dict, stages: Iterable[str] | None = None
                         ) -> None:
    """Log and count what writing `after` over `before` (one run) changed (`stages`: the
    stage entries the write changed, when known)."""
    change = run_transition(before.get("status"), after.get("status"),
                            (after.get("metadata") or {}).get("creationTimestamp"), stages)
    if change.empty:
        return
    namespace, project = _labels(after)
    name = (after.get("metadata") or {}).get("name", "")
    if change.started:
        RUNS_STARTED.labels(namespace, project).inc()
        log.info("run %s/%s started", namespace, name,
                 extra={"run": name, "namespace": namespace, "project": project,
                        "phase": _phase(after)})
    for stage in change.stages_ended:
        STAGES_FINISHED.labels(namespace, project, stage.phase).inc()
        if stage.duration_seconds is not None:
            STAGE_DURATION.labels(namespace, project, stage.phase).observe(
                stage.duration_seconds)
    if change.ended:
        RUNS_FINISHED.labels(namespace, project, change.ended).inc()
        if change.duration_seconds is not None:
            RUN_DURATION.labels(namespace, project, change.ended).observe(
                change.duration_seconds)
        log.info("run %s/%s ended: %s%s", namespace, name, change.ended,
                 f" ({change.reason})" if change.reason else "",
                 extra={"run": name, "namespace": namespace, "project": project,
                        "phase": change.ended, "duration_seconds": change.duration_seconds,
                        "reason": change.reason})


MAX_NAMES_LOGGED = 20


def log_resumed(runs: Iterable[dict]) -> list[str]:
    """Log, once at start-up, the runs found in flight (started, not ended); their keys."""
    resumed = sorted(
        f"{meta.get('namespace')}/{meta.get('name')}"
        for run in runs
        if not is_terminal(_phase(run))
        and ((run.get("status") or {}).get("overall") or {}).get("startTime")
        for meta in [run.get("metadata") or {}]
    )
    if not resumed:
        return resumed
    shown = ", ".join(resumed[:MAX_NAMES_LOGGED])
    more = len(resumed) - MAX_NAMES_LOGGED
    log.info("resumed %d run%s: %s%s", len(resumed), "" if len(resumed) == 1 else "s", shown,
             f" and {more} more" if more > 0 else "",
             extra={"runs": resumed, "count": len(resumed)})
    return resumed


_TRACKED: weakref.WeakSet = weakref.WeakSet()


@contextlib.contextmanager
def tracking_runs(cache: ObjectCache) -> Iterator[None]:
    """Count the runs of `cache` in the gauges of runs by phase while in this block (an
    engine that stopped, e.g. lost its lease, no longer counts)."""
    _TRACKED.add(cache)
    try:
        yield
    finally:
        _TRACKED.discard(cache)


class RunsByPhase(Collector):
    """``cyclone_runs`` (stored runs by phase) and ``cyclone_runs_in_flight``."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_phase: Tally[tuple[str, str, str]] = Tally()
        in_flight: Tally[tuple[str, str]] = Tally()
        for cache in list(_TRACKED):
            for run in cache.list():
                labels, phase = _labels(run), _phase(run)
                by_phase[(*labels, phase)] += 1
                if not is_terminal(phase):
                    in_flight[labels] += 1
        runs = GaugeMetricFamily(
            "cyclone_runs", "Runs the engine knows, by current phase.", labels=PHASE_LABELS)
        for key, count in sorted(by_phase.items()):
            runs.add_metric(list(key), count)
        flying = GaugeMetricFamily(
            "cyclone_runs_in_flight", "Runs not ended yet (Pending, Running, Waiting).",
            labels=RUN_LABELS)
        for key, count in sorted(in_flight.items()):
            flying.add_metric(list(key), count)
        yield runs
        yield flying

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("cyclone_runs", "", labels=PHASE_LABELS)
        yield GaugeMetricFamily("cyclone_runs_in_flight", "", labels=RUN_LABELS)


REGISTRY.register(RunsByPhase())
