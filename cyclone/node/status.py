"""Pod status from what the runtime reports about each container: pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cyclone.api.common import FINISHED_POD_PHASES, PodPhase
from cyclone.node.runtimes.base import ContainerExited, ContainerProgress, ContainerRunning

MAX_TERMINATION_MESSAGE_BYTES = 4096
PENDING, RUNNING, SUCCEEDED, FAILED = (phase.value for phase in (
    PodPhase.PENDING, PodPhase.RUNNING, PodPhase.SUCCEEDED, PodPhase.FAILED))


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerObservation:
    """What the agent knows of one container: its spec, progress and termination message."""

    name: str
    image: str
    image_id: str
    progress: ContainerProgress = None
    termination_message: str | None = None
    waiting_reason: str | None = None
    waiting_message: str | None = None

    @property
    def exited(self) -> bool:
        return isinstance(self.progress, ContainerExited)

    @property
    def running(self) -> bool:
        return isinstance(self.progress, ContainerRunning)

    @property
    def succeeded(self) -> bool:
        return isinstance(self.progress, ContainerExited) and self.progress.exit_code == 0

    @property
    def failed(self) -> bool:
        return isinstance(self.progress, ContainerExited) and self.progress.exit_code != 0


def terminated_reason(exited: ContainerExited) -> str:
    if exited.reason:
        return exited.reason
    return "Completed" if exited.exit_code == 0 else "Error"


def container_state(observation: ContainerObservation, default_waiting: str) -> dict:
    progress = observation.progress
    if isinstance(progress, ContainerRunning):
        return {"running": {"startedAt": timestamp(progress.started_at)}}
    if isinstance(progress, ContainerExited):
        terminated = {
            "exitCode": progress.exit_code,
            "reason": terminated_reason(progress),
            "startedAt": timestamp(progress.started_at),
            "finishedAt": timestamp(progress.finished_at),
            "containerID": progress.container_id,
        }
        message = observation.termination_message or progress.message
        if message:
            terminated["message"] = message
        return {"terminated": terminated}
    waiting = {"reason": observation.waiting_reason or default_waiting}
    if observation.waiting_message:
        waiting["message"] = observation.waiting_message
    return {"waiting": waiting}


def container_status(observation: ContainerObservation, default_waiting: str) -> dict:
    status = {
        "name": observation.name,
        "image": observation.image,
        "imageID": observation.image_id if observation.progress is not None else "",
        "ready": observation.running,
        "started": observation.running,
        "restartCount": 0,
        "lastState": {},
        "state": container_state(observation, default_waiting),
    }
    if observation.progress is not None:
        status["containerID"] = observation.progress.container_id
    return status


def pod_phase(init: list[ContainerObservation], main: list[ContainerObservation]) -> str:
    """The phase under `restartPolicy: Never`."""
    if any(o.failed for o in init):
        return FAILED
    if not all(o.succeeded for o in init):
        return PENDING
    if main and all(o.exited for o in main):
        return FAILED if any(o.failed for o in main) else SUCCEEDED
    if any(o.progress is not None for o in main):
        return RUNNING
    return PENDING


def _condition(kind: str, ok: bool, now: str, previous: dict[str, dict], reason: str = "",
               message: str = "") -> dict:
    status = "True" if ok else "False"
    before = previous.get(kind)
    changed = before is None or before.get("status") != status
    condition = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now if changed else before.get("lastTransitionTime", now),
    }
    if not ok and reason:
        condition["reason"] = reason
        if message:
            condition["message"] = message
    return condition


def _names(observations: list[ContainerObservation]) -> str:
    return "[" + " ".join(o.name for o in observations) + "]"


def qos_class(pod: dict) -> str:
    containers = [*(pod["spec"].get("initContainers") or []), *pod["spec"]["containers"]]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                return "Burstable"
    return "Guaranteed"


def failure_message(init: list[ContainerObservation], main: list[ContainerObservation]) -> str:
    for kind, observations in (("init container", init), ("container", main)):
        for o in observations:
            if o.failed:
                assert isinstance(o.progress, ContainerExited)
                return f"{kind} {o.name!r} exited with code {o.progress.exit_code}"
    return ""


def pod_status(
    pod: dict,
    init: list[ContainerObservation],
    main: list[ContainerObservation],
    *,
    host_ip: str,
    now: datetime,
) -> dict:
    """The full `status` of a pod, keeping transition times and startTime already recorded."""
    previous_status = pod.get("status") or {}
    previous = {c["type"]: c for c in previous_status.get("conditions") or []}
    stamp = timestamp(now)
    phase = pod_phase(init, main)
    initialized = all(o.succeeded for o in init)
    incomplete_init = [o for o in init if not o.succeeded]
    unready = [o for o in main if not o.running]
    terminal = phase in FINISHED_POD_PHASES
    ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    ready_message = "" if terminal else f"containers with unready status: {_names(unready)}"
    containers_ready = initialized and not unready
    main_waiting = "ContainerCreating" if initialized else "PodInitializing"
    return {
        "phase": phase,
        "conditions": [
            _condition("Initialized", initialized, stamp, previous, "ContainersNotInitialized",
                       f"containers with incomplete status: {_names(incomplete_init)}"),
            _condition("Ready", containers_ready, stamp, previous, ready_reason, ready_message),
            _condition("ContainersReady", containers_ready, stamp, previous, ready_reason,
                       ready_message),
            _condition("PodScheduled", True, stamp, previous),
        ],
        "message": failure_message(init, main) if phase == FAILED else None,
        "reason": None,
        "hostIP": host_ip,
        "podIP": host_ip,
        "podIPs": [{"ip": host_ip}],
        "startTime": previous_status.get("startTime") or stamp,
        "initContainerStatuses": [container_status(o, "PodInitializing") for o in init],
        "containerStatuses": [container_status(o, main_waiting) for o in main],
        "qosClass": qos_class(pod),
    }


def status_patch(status: dict) -> dict:
    """A JSON merge patch that sets `status`.

    Lists are replaced whole by a merge patch, so container states need no nulls; top-level
    keys that no longer apply are None, which removes them.
    """
    return {"status": status}


def read_termination_message(path, limit: int = MAX_TERMINATION_MESSAGE_BYTES) -> str | None:
    """The first `limit` bytes of a termination message file, or None when it is empty."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    return data.decode("utf-8", "replace") or None


def log_tail(path, limit: int = 2048, lines: int = 80) -> str | None:
    """The end of a container log, for `terminationMessagePolicy: FallbackToLogsOnError`."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except FileNotFoundError:
        return None
    text = "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
    return text or None
