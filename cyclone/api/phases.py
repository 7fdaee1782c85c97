"""The phase vocabularies of runs, stages and pods, with no pydantic: the CLI imports them
at start."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """Phase of a stage or of a whole run."""

    PENDING = "Pending"
    RUNNING = "Running"
    WAITING = "Waiting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})
"""Phases a stage or run never leaves."""

REASON_MANUALLY_PAUSE = "ManuallyPause"
"""The overall reason of a run while it is paused (its phase stays Running)."""


class PodPhase(StrEnum):
    """``status.phase`` of a Kubernetes Pod (a different vocabulary from `Phase`)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


FINISHED_POD_PHASES = frozenset({PodPhase.SUCCEEDED, PodPhase.FAILED})
"""Pod phases after which no container of the pod runs again."""

MAX_PENDING_TIMEOUT_SECONDS = 30 * 24 * 3600
"""The longest a stage's pod may be let stay Pending (`pod_pending_timeout_seconds`)."""
