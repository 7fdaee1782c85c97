"""A stage status from its pod: phase, reason, message, outputs and warning events.

The stage follows its workload container (the pod's first container), not the pod:
- pod Pending (scheduling, init containers, image pulls) → Running, reason ``PodPending``
  (the pod exists, so the stage has started; the message says what it waits for, as
  `cyclone.engine.core.pending` picks it);
- workload exited non-zero, or any init container failed → Failed, ``PodFailed``, with the
  container, its reason and exit code in the message — even while user sidecars still run;
- workload exited 0 and every Cyclone container (``csc-*``: output pushes) has exited 0 →
  Succeeded, ``PodSucceed``; a failed push → Failed. User sidecars (``wsc-*``) are not
  waited for: the controller deletes the pod of a finished stage;
- pod Succeeded/Failed → as the containers say; a pod Failed before its workload ended
  (evicted, deadline exceeded) → Failed with the pod's reason; pod Running → Running.

Outputs (of a finished stage) are the ``key:value`` lines of the termination messages of
the init containers (e.g. a Git resolver's ``LastCommitID``) and then of the workload
(which wins on a duplicate key). Events of the pod whose type is not ``Normal`` become stage events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cyclone.api.common import PodPhase
from cyclone.api.keys import ANNOTATION_LOGS_COLLECTED
from cyclone.engine.core.pending import pending_reason
from cyclone.engine.core.phases import (
    FAILED,
    REASON_POD_DELETED,
    REASON_POD_FAILED,
    REASON_POD_PENDING,
    REASON_POD_RUNNING,
    REASON_POD_SUCCEED,
    RUNNING,
    SUCCEEDED,
)
from cyclone.engine.core.results import parse_results

CYCLONE_CONTAINER_PREFIX = "csc-"


@dataclass
class StageObservation:
    """What a pod says about its stage; ``status`` is ``{phase, reason, message}``."""

    status: dict[str, str]
    outputs: list[dict[str, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status["phase"] in (SUCCEEDED, FAILED)


def _status(phase: str, reason: str, message: str | None = None) -> dict[str, str]:
    status = {"phase": phase, "reason": reason}
    if message:
        status["message"] = message
    return status


def _terminated(container_status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not container_status:
        return None
    return (container_status.get("state") or {}).get("terminated")


def _failure_message(name: str, terminated: Mapping[str, Any]) -> str:
    reason = terminated.get("reason") or "Error"
    code = terminated.get("exitCode")
    text = f'container "{name}" failed: {reason} (exit code {code})'
    detail = (terminated.get("message") or "").strip()
    if detail and reason not in ("Error", "Completed"):
        text = f"{text}: {detail}"
    return text


def _failed(terminated: Mapping[str, Any] | None) -> bool:
    return terminated is not None and terminated.get("exitCode") not in (0, None)


def pod_outputs(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    """Outputs from the termination messages of init containers, then the workload."""
    status = pod.get("status") or {}
    workload = workload_container_name(pod)
    messages: list[str] = []
    for entry in status.get("initContainerStatuses") or []:
        terminated = _terminated(entry)
        if terminated and terminated.get("message"):
            messages.append(terminated["message"])
    for entry in status.get("containerStatuses") or []:
        terminated = _terminated(entry)
        if entry.get("name") == workload and terminated and terminated.get("message"):
            messages.append(terminated["message"])
    merged: dict[str, str] = {}
    for message in messages:
        for item in parse_results(message):
            merged[item["key"]] = item["value"]
    return [{"key": key, "value": value} for key, value in merged.items()]


def workload_container_name(pod: Mapping[str, Any]) -> str | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    return containers[0].get("name") if containers else None


def stage_events(events: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Events that are not ``Normal``, as ``{name, reason, message, lastTimestamp, count}``."""
    result: list[dict[str, Any]] = []
    for event in events or ():
        if (event.get("type") or "Normal") == "Normal":
            continue
        meta = event.get("metadata") or {}
        item: dict[str, Any] = {
            "name": meta.get("name"),
            "reason": event.get("reason"),
            "message": event.get("message"),
            "lastTimestamp": event.get("lastTimestamp")
            or event.get("eventTime")
            or meta.get("creationTimestamp"),
            "count": event.get("count") or 1,
        }
        result.append({key: value for key, value in item.items() if value is not None})
    result.sort(key=lambda item: (str(item.get("lastTimestamp") or ""), str(item.get("name"))))
    return result


def _container_phase(pod: Mapping[str, Any]) -> dict[str, str] | None:
    status = pod.get("status") or {}
    for entry in status.get("initContainerStatuses") or []:
        terminated = _terminated(entry)
        if _failed(terminated):
            return _status(FAILED, REASON_POD_FAILED, _failure_message(entry["name"], terminated))
    by_name = {entry.get("name"): entry for entry in status.get("containerStatuses") or []}
    workload = workload_container_name(pod)
    terminated = _terminated(by_name.get(workload))
    if terminated is None:
        return None
    if _failed(terminated):
        return _status(FAILED, REASON_POD_FAILED, _failure_message(str(workload), terminated))
    pushes = [
        container.get("name")
        for container in (pod.get("spec") or {}).get("containers") or []
        if str(container.get("name", "")).startswith(CYCLONE_CONTAINER_PREFIX)
    ]
    for name in pushes:
        push_done = _terminated(by_name.get(name))
        if push_done is None:
            return None
        if _failed(push_done):
            return _status(FAILED, REASON_POD_FAILED, _failure_message(str(name), push_done))
    return _status(SUCCEEDED, REASON_POD_SUCCEED)


def observe_stage_pod(
    pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]] | None = None,
    claims: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> StageObservation:
    """The stage status a pod shows (see the module doc for the rules); ``claims``: the
    claims `pending.claims_to_read` named, as read."""
    status = pod.get("status") or {}
    phase = status.get("phase") or PodPhase.PENDING
    from_containers = _container_phase(pod)
    if phase == PodPhase.SUCCEEDED:
        result = from_containers or _status(SUCCEEDED, REASON_POD_SUCCEED)
    elif phase == PodPhase.FAILED:
        detail = status.get("message") or status.get("reason") or "pod failed"
        result = from_containers or _status(FAILED, REASON_POD_FAILED, detail)
    elif from_containers is not None:
        result = from_containers
    elif phase == PodPhase.RUNNING:
        result = _status(RUNNING, REASON_POD_RUNNING)
    else:
        waiting = pending_reason(pod, claims)
        result = _status(RUNNING, REASON_POD_PENDING, waiting.message if waiting else None)
    outputs = pod_outputs(pod) if result["phase"] in (SUCCEEDED, FAILED) else []
    return StageObservation(status=result, outputs=outputs, events=stage_events(events))


def pod_change_matters(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether a pod update can change what its run decides: its status, its deletion, or
    the mark that its logs are stored (which GC waits for). A pod that only gained a node
    or a resourceVersion does not wake its run."""
    if old is None:
        return True
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    if old.get("status") != new.get("status"):
        return True
    if bool(old_meta.get("deletionTimestamp")) != bool(new_meta.get("deletionTimestamp")):
        return True
    return (old_meta.get("annotations") or {}).get(ANNOTATION_LOGS_COLLECTED) != (
        new_meta.get("annotations") or {}).get(ANNOTATION_LOGS_COLLECTED)


def deleted_pod_status(pod_name: str | None = None) -> dict[str, str]:
    """The stage status when its pod vanished before the stage finished."""
    message = f'pod "{pod_name}" was deleted' if pod_name else "the stage pod was deleted"
    return _status(FAILED, REASON_POD_DELETED, message)
