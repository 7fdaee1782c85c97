"""Why a stage pod has not started yet, and how long the engine waits for it.

A pod that no container of is running waits for something outside Cyclone: the scheduler
(no node fits, a claim is not bound), the kubelet (an image cannot be pulled, a Secret or
ConfigMap the pod reads is missing) or the runtime. The stage shows the most specific
reason known, picked in this order:

1. a container (init containers first) waiting with a reason other than the routine
   ``ContainerCreating``/``PodInitializing`` (``ErrImagePull``, ``ImagePullBackOff``,
   ``CreateContainerConfigError``, …) — the kubelet's reason and message;
2. once the scheduler has refused the pod for its claims (its message speaks of
   PersistentVolumeClaims or persistent volumes), a claim it mounts that is not Bound, by
   name (the scheduler only says "pod has unbound immediate PersistentVolumeClaims");
3. the scheduler's refusal (``PodScheduled=False``): its message. A claim that is merely
   unbound does not hide another refusal: on a WaitForFirstConsumer class every claim
   stays unbound until its first pod is placed, so "Insufficient cpu" is the real reason.

Image pulls the kubelet retries are still waiting, not failures: a later pull may work.
The one limit is the pending timeout, counted from when the pod began to wait: its
creation, or the end of the last init container that ran. The creation is the moment the
stage's status turned Running (the engine made the pod then), on the engine's own clock;
the end of an init container is that moment plus how long after the pod's
``creationTimestamp`` the container finished, both the cluster's clocks. So the deadline is
read from stored state alone (it holds across engine restarts), and a skew between the
engine's clock and the cluster's does not move it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cyclone.api.common import MAX_PENDING_TIMEOUT_SECONDS
from cyclone.engine.core.phases import REASON_POD_PENDING
from cyclone.engine.core.timefmt import parse_rfc3339

ROUTINE_WAITING = frozenset({"ContainerCreating", "PodInitializing"})
REASON_UNSCHEDULABLE = "Unschedulable"
REASON_CLAIM_NOT_BOUND = "PersistentVolumeClaimNotBound"
CLAIM_REFUSAL_MARKERS = ("persistentvolumeclaim", "unbound immediate", "persistent volume",
                         "binding volumes")


@dataclass(frozen=True)
class PendingReason:
    """``reason``: a short word (the kubelet's or scheduler's, or Cyclone's for a claim);
    ``message``: the sentence a person reads."""

    reason: str
    message: str


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or [])]


def waiting_since(pod: Mapping[str, Any]) -> timedelta | None:
    """How long after its creation a Pending pod began to wait with no container running
    (zero, or until its last init container that ran had finished); None when a
    container runs, the workload has started, or the pod is past Pending."""
    status = pod.get("status") or {}
    if (status.get("phase") or "Pending") != "Pending":
        return None
    created = (pod.get("metadata") or {}).get("creationTimestamp")
    since = timedelta(0)
    for entry in status.get("initContainerStatuses") or []:
        state = entry.get("state") or {}
        if state.get("running"):
            return None
        finished = (state.get("terminated") or {}).get("finishedAt")
        if finished and created:
            since = max(since, parse_rfc3339(finished) - parse_rfc3339(created))
    for entry in status.get("containerStatuses") or []:
        state = entry.get("state") or {}
        if state.get("running") or state.get("terminated"):
            return None
    return since


def scheduler_refusal(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod's ``PodScheduled=False`` condition, if the scheduler has refused it."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return condition
    return None


def refused_for_claims(refusal: Mapping[str, Any] | None) -> bool:
    """Whether a ``PodScheduled=False`` condition is about the pod's claims or volumes."""
    text = ((refusal or {}).get("message") or "").lower()
    return any(marker in text for marker in CLAIM_REFUSAL_MARKERS)


def claims_to_read(pod: Mapping[str, Any]) -> list[str]:
    """The claims whose state can explain the pod's wait: those it mounts, once the
    scheduler has refused it for its claims (before that nothing says a claim is in the
    way)."""
    if not refused_for_claims(scheduler_refusal(pod)) or waiting_since(pod) is None:
        return []
    names = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if name and name not in names:
            names.append(name)
    return names


def _claim_problem(name: str, claim: Mapping[str, Any] | None) -> str | None:
    if claim is None:
        return f"PersistentVolumeClaim {name} does not exist"
    phase = (claim.get("status") or {}).get("phase") or "Pending"
    if phase == "Bound":
        return None
    storage_class = (claim.get("spec") or {}).get("storageClassName")
    detail = f"storage class {storage_class}" if storage_class else "no storage class"
    if phase != "Pending":
        detail = f"{detail}, phase {phase}"
    return f"PersistentVolumeClaim {name} is not bound ({detail})"


def pending_reason(
    pod: Mapping[str, Any], claims: Mapping[str, Mapping[str, Any] | None] | None = None
) -> PendingReason | None:
    """The most specific reason the pod has not started (see the module doc); ``claims``
    maps the names `claims_to_read` gave to the claims read (None: not found)."""
    for entry in _statuses(pod):
        waiting = (entry.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason not in ROUTINE_WAITING:
            text = f'container "{entry.get("name")}": {reason}'
            detail = waiting.get("message")
            return PendingReason(reason, f"{text}: {detail}" if detail else text)
    refusal = scheduler_refusal(pod)
    if refusal is None:
        return None
    if refused_for_claims(refusal):
        for name, claim in (claims or {}).items():
            problem = _claim_problem(name, claim)
            if problem:
                return PendingReason(REASON_CLAIM_NOT_BOUND, problem)
    reason = refusal.get("reason") or REASON_UNSCHEDULABLE
    message = refusal.get("message") or reason
    if reason != REASON_UNSCHEDULABLE:
        message = f"{reason}: {message}"
    return PendingReason(reason, message)


def pending_deadline(
    pod: Mapping[str, Any], timeout_seconds: float, created_at: datetime
) -> datetime | None:
    """When a waiting pod's stage fails, on the clock of `created_at` (when the engine
    made the pod); None when the pod is not waiting or the timeout is 0 (wait forever).
    A timeout above `MAX_PENDING_TIMEOUT_SECONDS` counts as that bound."""
    if timeout_seconds <= 0:
        return None
    since = waiting_since(pod)
    if since is None:
        return None
    return created_at + since + timedelta(
        seconds=min(timeout_seconds, MAX_PENDING_TIMEOUT_SECONDS))


def timed_out_reason(
    pod_name: str | None, timeout_seconds: float, last: PendingReason | None
) -> PendingReason:
    """The failure of a stage whose pod waited past the timeout: the last reason seen."""
    who = f'pod "{pod_name}"' if pod_name else "the stage pod"
    text = f"{who} did not start within {timeout_seconds:g}s"
    if last is None:
        return PendingReason(REASON_POD_PENDING, text)
    return PendingReason(last.reason, f"{text}: {last.message}")
