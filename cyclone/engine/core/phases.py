"""Phase and reason names used by the core, as plain strings.

They equal the values of the API's phase enum, so a ``str`` enum member and one of these
constants compare equal; the core never needs the enum itself.
"""

from __future__ import annotations

PENDING = "Pending"
RUNNING = "Running"
WAITING = "Waiting"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELLED = "Cancelled"

ALL_PHASES = (PENDING, RUNNING, WAITING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED, CANCELLED})
UNSUCCESSFUL_PHASES = frozenset({FAILED, CANCELLED})

REASON_STAGE_POD_CREATED = "StagePodCreated"
REASON_POD_PENDING = "PodPending"
REASON_POD_RUNNING = "PodRunning"
REASON_POD_SUCCEED = "PodSucceed"
REASON_POD_FAILED = "PodFailed"
REASON_POD_DELETED = "PodDeleted"
REASON_UPSTREAM_FAILED = "UpstreamFailed"
REASON_TOO_MANY_WAITING = "TooManyWaiting"
REASON_TIMEOUT = "Timeout"


def phase_value(phase: object) -> str | None:
    """A phase as its plain string, accepting str enums, strings and None."""
    if phase is None:
        return None
    value = getattr(phase, "value", phase)
    return str(value)


def is_terminal(phase: object) -> bool:
    """Whether a stage or run phase can no longer change (Succeeded, Failed, Cancelled)."""
    return phase_value(phase) in TERMINAL_PHASES
