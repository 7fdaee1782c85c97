"""Which status changes of a reconcile may wait before they are written to the run.

A run's progress (admitted, stages started, pods seen running) may be kept for a short
while and written together with what follows it, so a stage that ends soon after it
started costs one status write instead of two. An outcome (a stage or the run reaching a
terminal phase) is written at once: it is what users, downstream stages and notifications
wait for. Nothing is lost by waiting: a stage pod's name is fixed per run, stage and
attempt, so an engine that restarts before writing a start creates the same pod, finds it
exists and records it then.
"""

from __future__ import annotations

from cyclone.engine.core.phases import WAITING, is_terminal
from cyclone.engine.core.runstate import RunState


def _phase(entry: dict | None) -> str | None:
    return ((entry or {}).get("status") or {}).get("phase")


def progress_only(state: RunState) -> bool:
    """Whether every change `state` made since its run was read is progress: nothing
    reached a terminal phase or began waiting for an outside system, and the run's
    queueing did not change."""
    if is_terminal(state.overall_phase):
        return False
    read = state.run.get("status") or {}
    if bool(read.get("queued")) != bool(state.status.get("queued")):
        return False
    stages = read.get("stages") or {}
    for name in state.touched_stages:
        phase, before = state.stage_phase(name), _phase(stages.get(name))
        if phase == WAITING and before != WAITING:
            return False
        if is_terminal(phase) and not is_terminal(before):
            return False
    return True
