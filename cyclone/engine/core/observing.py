"""Observed facts folded into a run's stage statuses: what a stage's pod says, a failed
attempt's retry, and delegation deadlines. Plain data in, `RunState` edits out; the
controllers fetch the pods and events and call these."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cyclone.api.common import FINISHED_POD_PHASES
from cyclone.api.formats import parse_duration
from cyclone.engine.core import podstatus
from cyclone.engine.core.masking import Masker, mask_outputs
from cyclone.engine.core.pending import (
    PendingReason,
    pending_deadline,
    pending_reason,
    timed_out_reason,
)
from cyclone.engine.core.phases import (
    FAILED,
    PENDING,
    REASON_POD_PENDING,
    REASON_TIMEOUT,
    RUNNING,
    SUCCEEDED,
    WAITING,
)
from cyclone.engine.core.retries import decide_retry
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.timefmt import parse_rfc3339

REASON_RETRYING = "RetryAfterFailure"


@dataclass(frozen=True)
class RetryPolicy:
    retries: int
    backoff: timedelta | None


def retry_policy(stage_obj: dict | None) -> RetryPolicy:
    """A Stage's ``spec.retries`` and ``spec.retryBackoff`` (an unreadable backoff: the
    default)."""
    spec = (stage_obj or {}).get("spec") or {}
    try:
        backoff = parse_duration(spec["retryBackoff"]) if spec.get("retryBackoff") else None
    except ValueError:
        backoff = None
    return RetryPolicy(int(spec.get("retries") or 0), backoff)


def observe_pod(
    state: RunState,
    stage: str,
    pod: dict | None,
    policy: RetryPolicy,
    events: list[dict] | None = None,
    masker: Masker | None = None,
    claims: dict[str, dict | None] | None = None,
    pending_timeout_seconds: float = 0,
) -> datetime | None:
    """Fold what a Running stage's pod says into the stage status; returns when the
    stage fails if its pod is still waiting to start then.

    ``pod`` None means the pod is gone (confirmed by the caller): ``PodDeleted``. A failed
    attempt with retries left puts the stage back to Pending (reason
    ``RetryAfterFailure``); it is started again once its backoff has passed. ``masker``
    hides secret values in the outputs and the message taken from termination messages.
    ``claims``: the claims `pending.claims_to_read` named for the pod, as read. A pod
    waiting longer than ``pending_timeout_seconds`` (0: no limit) fails the attempt with
    the last reason it waited for.
    """
    entry = state.stage(stage)
    if pod is None:
        gone = podstatus.deleted_pod_status((entry.get("pod") or {}).get("name"))
        fail_or_retry(state, stage, gone["reason"], gone.get("message"), policy)
        return None
    seen = podstatus.observe_stage_pod(pod, events, claims)
    if seen.events:
        entry["events"] = merge_events(entry.get("events") or [], seen.events)
    phase, reason, message = seen.status["phase"], seen.status["reason"], seen.status.get("message")
    if masker is not None:
        seen.outputs = mask_outputs(seen.outputs, masker)
        message = masker.mask_text(message) if message else message
    if phase == SUCCEEDED:
        entry["outputs"] = seen.outputs
        state.set_stage(stage, SUCCEEDED, reason, message)
    elif phase == FAILED:
        if seen.outputs:
            entry["outputs"] = seen.outputs
        fail_or_retry(state, stage, reason, message, policy)
    else:
        made = (entry.get("status") or {}).get("lastTransitionTime")
        deadline = pending_deadline(pod, pending_timeout_seconds,
                                    parse_rfc3339(made) if made else state.now)
        if deadline is None or deadline > state.now:
            state.set_stage(stage, RUNNING, reason, message)
            return deadline
        failure = timed_out_reason((pod.get("metadata") or {}).get("name"),
                                   pending_timeout_seconds,
                                   pending_reason(pod, claims) or _last_pending(entry))
        fail_or_retry(state, stage, failure.reason, failure.message, policy)
    return None


def _last_pending(entry: dict) -> PendingReason | None:
    """The reason a stage last showed for its waiting pod, if any."""
    status = entry.get("status") or {}
    if status.get("reason") == REASON_POD_PENDING and status.get("message"):
        return PendingReason(REASON_POD_PENDING, status["message"])
    return None


def has_termination_messages(pod: dict | None) -> bool:
    """Whether a container of the pod ended with a termination message (outputs, or the
    tail of its log in a failure message): what is masked before it enters the status."""
    status = (pod or {}).get("status") or {}
    return any(((entry.get("state") or {}).get("terminated") or {}).get("message")
               for entry in [*(status.get("initContainerStatuses") or []),
                             *(status.get("containerStatuses") or [])])


def pod_still_running(pod: dict | None) -> bool:
    """A pod whose stage is decided but which has not ended (user sidecars still run)."""
    return pod is not None and (
        (pod.get("status") or {}).get("phase") not in FINISHED_POD_PHASES)


def fail_or_retry(
    state: RunState, stage: str, reason: str | None, message: str | None, policy: RetryPolicy
) -> None:
    """A failed attempt: Failed, or back to Pending (``RetryAfterFailure``) while the
    policy allows another attempt."""
    entry = state.stage(stage)
    attempt = int(entry.get("attempts") or 1)
    decision = decide_retry(attempt, policy.retries, state.now, policy.backoff)
    if not decision.retry:
        state.set_stage(stage, FAILED, reason, message)
        return
    text = f"attempt {attempt} failed ({reason}: {message}); attempt {attempt + 1} follows"
    state.set_stage(stage, PENDING, REASON_RETRYING, text)


def retry_not_before(state: RunState, stage: str, policy: RetryPolicy) -> datetime | None:
    """When a stage waiting to be retried may start its next attempt (None: now)."""
    entry = state.stages.get(stage) or {}
    status = entry.get("status") or {}
    if status.get("phase") != PENDING or status.get("reason") != REASON_RETRYING:
        return None
    failed_at = parse_rfc3339(status.get("lastTransitionTime") or state.now)
    decision = decide_retry(int(entry.get("attempts") or 1), policy.retries, failed_at,
                            policy.backoff)
    return decision.not_before


def expire_delegations(state: RunState, waiting: Iterable[str] | None = None
                       ) -> datetime | None:
    """Fail Waiting delegation stages past their deadline; the earliest deadline left.
    ``waiting``: the Waiting stages when known, so only those are read."""
    earliest: datetime | None = None
    for name in state.stages if waiting is None else waiting:
        entry = state.stages.get(name) or {}
        if (entry.get("status") or {}).get("phase") != WAITING:
            continue
        deadline_text = (entry.get("delegation") or {}).get("deadline")
        if not deadline_text:
            continue
        deadline = parse_rfc3339(deadline_text)
        if deadline <= state.now:
            state.set_stage(name, FAILED, REASON_TIMEOUT, "no delegation result before deadline")
        elif earliest is None or deadline < earliest:
            earliest = deadline
    return earliest


def merge_events(old: list[dict], new: list[dict]) -> list[dict]:
    """A stage's events with newly seen ones: one per (name, reason), the newest kept."""
    by_key = {(e.get("name"), e.get("reason")): e for e in old}
    for event in new:
        by_key[(event.get("name"), event.get("reason"))] = event
    return list(by_key.values())
