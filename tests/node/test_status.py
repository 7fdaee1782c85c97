"""Pod status computed from container progress, without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes_validate
import pytest

from cyclone.node.node_object import node_object
from cyclone.node.runtimes.base import ContainerExited, ContainerProgress, ContainerRunning
from cyclone.node.status import (
    ContainerObservation,
    pod_phase,
    pod_status,
    read_termination_message,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(seconds=7)
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns"},
    "spec": {
        "initContainers": [{"name": "i", "image": "busybox"}],
        "containers": [{"name": "c", "image": "busybox:1"}],
    },
}


def observed(
    name: str, progress: ContainerProgress = None, message: str | None = None
) -> ContainerObservation:
    return ContainerObservation(name, "busybox", "host://busybox", progress, message)


def running() -> ContainerRunning:
    return ContainerRunning(T0, "host://abc")


def exited(code: int, reason: str | None = None) -> ContainerExited:
    return ContainerExited(code, T0, T1, "host://abc", reason=reason)


@pytest.mark.parametrize(
    ("init", "main", "phase"),
    [
        ([None], [None], "Pending"),
        ([running()], [None], "Pending"),
        ([exited(1)], [None], "Failed"),
        ([exited(0)], [None], "Pending"),
        ([exited(0)], [running(), None], "Running"),
        ([exited(0)], [exited(0), running()], "Running"),
        ([exited(0)], [exited(0), exited(0)], "Succeeded"),
        ([exited(0)], [exited(0), exited(2)], "Failed"),
        ([], [exited(0)], "Succeeded"),
    ],
)
def test_phase_under_restart_policy_never(
    init: list[ContainerProgress], main: list[ContainerProgress], phase: str
) -> None:
    observations = [observed(f"i{n}", p) for n, p in enumerate(init)]
    mains = [observed(f"c{n}", p) for n, p in enumerate(main)]
    assert pod_phase(observations, mains) == phase


def test_running_pod_status_is_valid_and_ready() -> None:
    status = pod_status(POD, [observed("i", exited(0))], [observed("c", running())],
                        host_ip="127.0.0.1", now=T1)
    assert status["phase"] == "Running"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Initialized": "True", "Ready": "True", "ContainersReady": "True",
                          "PodScheduled": "True"}
    (container,) = status["containerStatuses"]
    assert container["ready"] is True
    assert container["state"] == {"running": {"startedAt": "2026-01-02T03:04:05Z"}}
    kubernetes_validate.validate({**POD, "status": status}, "1.30", strict=True)


def test_terminated_state_carries_exit_code_reason_and_message() -> None:
    status = pod_status(
        POD, [observed("i", exited(0))], [observed("c", exited(137, "OOMKilled"), "out of mem")],
        host_ip="127.0.0.1", now=T1,
    )
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated == {
        "exitCode": 137, "reason": "OOMKilled", "message": "out of mem",
        "startedAt": "2026-01-02T03:04:05Z", "finishedAt": "2026-01-02T03:04:12Z",
        "containerID": "host://abc",
    }
    assert status["phase"] == "Failed"
    assert "exited with code 137" in status["message"]
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")
    kubernetes_validate.validate({**POD, "status": status}, "1.30", strict=True)


def test_waiting_reasons_while_initializing() -> None:
    status = pod_status(POD, [observed("i", running())], [observed("c")],
                        host_ip="127.0.0.1", now=T0)
    waiting = status["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {"reason": "PodInitializing"}
    initialized = {c["type"]: c for c in status["conditions"]}["Initialized"]
    assert initialized["reason"] == "ContainersNotInitialized"
    assert initialized["message"] == "containers with incomplete status: [i]"


def test_transition_times_and_start_time_are_kept() -> None:
    first = pod_status(POD, [observed("i", running())], [observed("c")],
                       host_ip="127.0.0.1", now=T0)
    later = pod_status({**POD, "status": first}, [observed("i", exited(0))],
                       [observed("c", running())], host_ip="127.0.0.1", now=T1)
    times = {c["type"]: c["lastTransitionTime"] for c in later["conditions"]}
    assert times["PodScheduled"] == "2026-01-02T03:04:05Z"
    assert times["Initialized"] == "2026-01-02T03:04:12Z"
    assert later["startTime"] == first["startTime"] == "2026-01-02T03:04:05Z"


def test_termination_message_is_cut_at_4096_bytes(tmp_path: Path) -> None:
    path = tmp_path / "message"
    path.write_bytes(b"a" * 5000)
    assert read_termination_message(path) == "a" * 4096
    path.write_bytes(b"")
    assert read_termination_message(path) is None
    assert read_termination_message(tmp_path / "absent") is None


def test_node_object_is_a_valid_v1_node(tmp_path: Path) -> None:
    node = node_object("n1", tmp_path / "logs", runtime_name="host", now=T0,
                       log_server_port=10250)
    kubernetes_validate.validate(node, "1.30", strict=True)
    assert node["metadata"]["annotations"]["node.cyclone.dev/log-dir"] == str(tmp_path / "logs")
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    assert int(node["status"]["capacity"]["cpu"]) >= 1
    assert node["status"]["capacity"]["memory"].endswith("Ki")
