"""Stage and run status rules.

Overall phase of a run, from its stages (REFERENCE.md, exactly): no stages → Pending; any
Running → Running; else any Waiting → Waiting; else any non-trivial Failed/Cancelled →
Failed; else any Pending → Running; else Succeeded.

The rule is applied *after* the DAG step (``dag.plan_step``): runnable stages have been
started (so they count as Running) and blocked stages have been Cancelled with reason
``UpstreamFailed``. Hence a Pending stage that can never run does not keep a failed run
Running, and a failure on one branch does not end the run while another branch still has
work: the run is Failed only once nothing is Running, Waiting or startable. Stages outside
the run's sub-graph are never put in the run status.

A terminal stage status (Succeeded, Failed, Cancelled) is never overwritten.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from cyclone.engine.core.phases import (
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    UNSUCCESSFUL_PHASES,
    WAITING,
    is_terminal,
    phase_value,
)
from cyclone.engine.core.timefmt import rfc3339

__all__ = [
    "CANCELLED",
    "FAILED",
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "WAITING",
    "apply_stage_status",
    "is_terminal",
    "make_status",
    "overall_phase",
]


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _stage_phase_and_trivial(value: Any) -> tuple[str | None, bool]:
    if type(value) is dict and type(value.get("status")) is dict:  # a run-status entry
        phase = value["status"].get("phase")
        return phase if phase is None or type(phase) is str else phase_value(phase), bool(
            value.get("trivial") or False
        )
    if value is None or isinstance(value, str) or hasattr(value, "value"):
        return phase_value(value), False
    status = _get(value, "status")
    phase = _get(status, "phase") if status is not None else _get(value, "phase")
    return phase_value(phase), bool(_get(value, "trivial") or False)


def overall_phase(
    stages: Mapping[str, Any] | None,
    trivial: Collection[str] | None = None,
    *,
    scope: Collection[str] | None = None,
) -> str:
    """The run's overall phase from its stage statuses.

    ``stages`` maps a stage name to its phase, or to a run-status stage entry
    (``{status: {phase}, trivial}`` as a dict or model). ``trivial`` names trivial stages
    in addition to the entries' own ``trivial`` flags. ``scope`` (e.g.
    ``dag.stages_in_scope(...)``) names the stages the run is made of: those without an
    entry yet count as Pending, so a run whose later stages have not been recorded is not
    reported Succeeded early.
    """
    trivial_names = set(trivial or ())
    entries = []
    for name, value in (stages or {}).items():
        phase, is_trivial = _stage_phase_and_trivial(value)
        entries.append((phase or PENDING, is_trivial or name in trivial_names))
    for name in scope or ():
        if name not in (stages or {}):
            entries.append((PENDING, name in trivial_names))
    if not entries:
        return PENDING
    phases = {phase for phase, _ in entries}
    if RUNNING in phases:
        return RUNNING
    if WAITING in phases:
        return WAITING
    if any(phase in UNSUCCESSFUL_PHASES and not is_trivial for phase, is_trivial in entries):
        return FAILED
    if PENDING in phases:
        return RUNNING
    return SUCCEEDED


def make_status(
    phase: str, now: datetime, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """A fresh ``{phase, lastTransitionTime, reason, message}`` status dict."""
    status: dict[str, Any] = {"phase": phase_value(phase), "lastTransitionTime": rfc3339(now)}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return status


def _as_dict(status: Any) -> dict[str, Any] | None:
    if status is None:
        return None
    if isinstance(status, Mapping):
        return dict(status)
    dump = getattr(status, "model_dump", None)
    if dump is not None:
        return dump(by_alias=True, exclude_none=True, mode="json")
    raise TypeError(f"not a status: {status!r}")


def apply_stage_status(old: Any, new: Any, now: datetime) -> Any:
    """The status to store when ``new`` is observed over ``old``.

    A terminal ``old`` wins unchanged. ``lastTransitionTime`` becomes ``now`` when the
    phase changes (kept otherwise); ``startTime`` is set to ``now`` the first time the
    stage leaves Pending and kept afterwards. Works on dicts (camelCase keys, RFC 3339
    strings) and on pydantic status models (the result is of ``new``'s type).
    """
    old_dict = _as_dict(old)
    new_dict = _as_dict(new)
    if new_dict is None:
        return old
    if old_dict is not None and is_terminal(old_dict.get("phase")):
        return old
    merged = dict(new_dict)
    new_phase = phase_value(merged.get("phase")) or PENDING
    merged["phase"] = new_phase
    old_phase = phase_value(old_dict.get("phase")) if old_dict else None
    if old_dict is not None and old_phase == new_phase and old_dict.get("lastTransitionTime"):
        merged["lastTransitionTime"] = old_dict["lastTransitionTime"]
    elif old_phase != new_phase or not merged.get("lastTransitionTime"):
        merged["lastTransitionTime"] = rfc3339(now)
    start = old_dict.get("startTime") if old_dict else None
    if start:
        merged["startTime"] = start
    elif new_phase != PENDING:
        merged["startTime"] = merged.get("startTime") or rfc3339(now)
    else:
        merged.pop("startTime", None)
    if new is not None and not isinstance(new, Mapping) and hasattr(new, "model_validate"):
        return type(new).model_validate(merged)
    return merged
