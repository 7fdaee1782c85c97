"""Phase and reason names used by the core.

The phases are the values of the one phase enum, `cyclone.api.common.Phase`, as plain
strings: they go into stored objects as they are, and compare equal to the enum members.
"""

from __future__ import annotations

from cyclone.api.common import Phase

PENDING = Phase.PENDING.value
RUNNING = Phase.RUNNING.value
WAITING = Phase.WAITING.value
SUCCEEDED = Phase.SUCCEEDED.value
FAILED = Phase.FAILED.value
CANCELLED = Phase.CANCELLED.value

ALL_PHASES = tuple(phase.value for phase in Phase)
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
