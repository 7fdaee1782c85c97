"""What one status write did to a run: whether it started or ended the run, and which
stages it ended and after how long.

The engine writes a run's status conditionally on the version it read, so comparing the
status it read with the one it wrote sees each transition exactly once: the run's logs
("run started", "run ended") and its metrics come from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cyclone.engine.core.phases import PENDING, is_terminal
from cyclone.engine.core.timefmt import parse_rfc3339


@dataclass(frozen=True)
class StageEnd:
    name: str
    phase: str
    duration_seconds: float | None
    """From the stage's start to its last transition; None for a stage that never started."""


@dataclass(frozen=True)
class RunTransition:
    started: bool = False
    """The run left Pending for a phase that is not terminal, for the first time."""
    ended: str | None = None
    """The terminal phase the run reached."""
    reason: str | None = None
    message: str | None = None
    duration_seconds: float | None = None
    """Of an ended run: from its start (its creation when it never started) to its end."""
    stages_ended: list[StageEnd] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.started or self.ended or self.stages_ended)


def _phase(status: dict | None) -> str | None:
    return (status or {}).get("phase")


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return max((parse_rfc3339(end) - parse_rfc3339(start)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def _stage_status(stages: dict, name: str) -> dict:
    entry = stages.get(name)
    status = entry.get("status") if isinstance(entry, dict) else None
    return status if isinstance(status, dict) else {}


def run_transition(before: dict | None, after: dict | None,
                   created: str | None = None,
                   stages: Iterable[str] | None = None) -> RunTransition:
    """The transition from the status `before` to `after` of one run (`created`: its
    creationTimestamp, the start of a run that ended without starting; `stages`: the
    stage entries the write changed, when known, so the others are not read).

    Starts are read from `before`: the write that ends a run or stage that never began
    also gives it a `startTime`, which is its end. A stage that never began is not timed."""
    before, after = before or {}, after or {}
    old, new = before.get("overall") or {}, after.get("overall") or {}
    old_phase, new_phase = _phase(old), _phase(new)
    started = (
        not old.get("startTime") and bool(new.get("startTime"))
        and new_phase not in (None, PENDING) and not is_terminal(new_phase)
    )
    ended = new_phase if is_terminal(new_phase) and not is_terminal(old_phase) else None
    duration = None
    if ended:
        duration = _seconds_between(old.get("startTime") or created or new.get("startTime"),
                                    after.get("completionTime") or new.get("lastTransitionTime"))
    old_stages = before.get("stages") or {}
    new_stages = after.get("stages") or {}
    stages_ended = []
    for name in new_stages if stages is None else (n for n in stages if n in new_stages):
        status = _stage_status(new_stages, name)
        if is_terminal(status.get("phase")) and not is_terminal(
                _stage_status(old_stages, name).get("phase")):
            stages_ended.append(StageEnd(
                name, status["phase"],
                _seconds_between(_stage_status(old_stages, name).get("startTime"),
                                 status.get("lastTransitionTime"))))
    return RunTransition(
        started=started, ended=ended,
        reason=new.get("reason") if ended else None,
        message=new.get("message") if ended else None,
        duration_seconds=duration, stages_ended=stages_ended,
    )
