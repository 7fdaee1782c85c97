"""Parallelism limits: whether a run starts now, waits in the queue, or is rejected.

Every run is in one of four states, read from its status: *terminal* (overall phase
Succeeded/Failed/Cancelled), *queued* (``status.queued`` true), *new* (no overall phase
yet: the controller has not decided) or *active* (admitted: any other phase). The
controller sets ``queued`` or a non-terminal overall phase when it decides, so the
decision is taken once per run.

Free slots go to queued and new runs in creation order (then by name). A run that would
start is never held back by an earlier run whose own workflow is at its limit. A new run
that cannot start is queued if the queue has room (the queue holds the queued runs and the
new runs created earlier that cannot start either); otherwise it is rejected
(``TooManyWaiting``). A run already queued is never rejected.

``None`` means unlimited for every limit; ``max_queued = 0`` means no queue at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cyclone.engine.core.phases import is_terminal


class Admission(StrEnum):
    START = "Start"
    QUEUE = "Queue"
    REJECT = "Reject"
    FINISHED = "Finished"


@dataclass(frozen=True)
class RunInfo:
    name: str
    workflow: str
    created: datetime
    phase: str | None = None
    queued: bool = False

    @property
    def terminal(self) -> bool:
        return is_terminal(self.phase)

    @property
    def waiting_for_decision(self) -> bool:
        return not self.terminal and (self.queued or self.phase is None)

    @property
    def active(self) -> bool:
        return not self.terminal and not self.waiting_for_decision


@dataclass(frozen=True)
class ParallelismLimits:
    max_running: int | None = None
    max_queued: int | None = None
    per_workflow_max_running: int | None = None
    per_workflow_max_queued: int | None = None


def _room(used: int, limit: int | None) -> bool:
    return limit is None or used < limit


def _order(runs: Iterable[RunInfo]) -> list[RunInfo]:
    return sorted(runs, key=lambda run: (run.created, run.name))


def runs_to_start(runs: Iterable[RunInfo], limits: ParallelismLimits) -> list[str]:
    """Queued and new runs that get a free slot now, in creation order."""
    all_runs = list(runs)
    running = sum(1 for run in all_runs if run.active)
    per_workflow = Counter(run.workflow for run in all_runs if run.active)
    starting: list[str] = []
    for run in _order(r for r in all_runs if r.waiting_for_decision):
        if not _room(running, limits.max_running):
            break
        if not _room(per_workflow[run.workflow], limits.per_workflow_max_running):
            continue
        starting.append(run.name)
        running += 1
        per_workflow[run.workflow] += 1
    return starting


def admit_run(name: str, runs: Iterable[RunInfo], limits: ParallelismLimits) -> Admission:
    """The decision for one run among all runs (the run itself included in ``runs``)."""
    all_runs = list(runs)
    by_name = {run.name: run for run in all_runs}
    run = by_name.get(name)
    if run is None:
        raise KeyError(f'run "{name}" is not among the runs given')
    if run.terminal:
        return Admission.FINISHED
    if run.active:
        return Admission.START
    starting = set(runs_to_start(all_runs, limits))
    if name in starting:
        return Admission.START
    if run.queued:
        return Admission.QUEUE
    ahead = [
        other
        for other in all_runs
        if other.name != name
        and other.waiting_for_decision
        and other.name not in starting
        and (other.queued or (other.created, other.name) < (run.created, run.name))
    ]
    same_workflow = sum(1 for other in ahead if other.workflow == run.workflow)
    if _room(len(ahead), limits.max_queued) and _room(
        same_workflow, limits.per_workflow_max_queued
    ):
        return Admission.QUEUE
    return Admission.REJECT
