"""Pods run by the node agent on the host runtime against the embedded cluster."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import pytest

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node import NodeAgent, pod_worker
from node.helpers import (
    NODE,
    pod_manifest,
    signal_volume,
    statuses,
    terminal,
    until,
    wait_for_pod,
    wait_for_pod_gone,
)

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")


async def pod_log(cluster: EmbeddedCluster, pod: str, container: str) -> str:
    chunks = [c async for c in cluster.pod_logs(pod, "default", container=container)]
    return b"".join(chunks).decode()


def shell(name: str, script: str, **extra: object) -> dict:
    return {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", script], **extra}



async def test_init_containers_and_container_share_empty_dir_and_pvc(
    cluster: EmbeddedCluster, host_agent: NodeAgent, tmp_path: Path
) -> None:
    work, data = f"{tmp_path}/mnt/work", f"{tmp_path}/mnt/data"
    mounts = [{"name": "scratch", "mountPath": work}, {"name": "shared", "mountPath": data}]
    spec = {
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "shared", "persistentVolumeClaim": {"claimName": "claim"}},
        ],
        "initContainers": [
            shell("first", f"echo one > {work}/steps; echo first-ran", volumeMounts=mounts),
            shell("second", f"echo two >> {work}/steps; echo pvc > {data}/kept",
                  volumeMounts=mounts),
        ],
        "containers": [
            shell(
                "main",
                f"cat {work}/steps; hostname; printf 'result:%s' \"$(cat {data}/kept)\""
                " > /dev/termination-log; echo to-stderr >&2",
                volumeMounts=mounts,
            )
        ],
    }
    await cluster.create(pod_manifest("shared", spec))
    pod = await wait_for_pod(cluster, "shared", terminal)

    assert pod["status"]["phase"] == "Succeeded", str(pod["status"])
    for name, status in statuses(pod, "initContainerStatuses").items():
        assert status["state"]["terminated"]["exitCode"] == 0, name
        assert status["state"]["terminated"]["reason"] == "Completed"
    main = statuses(pod)["main"]
    terminated = main["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["message"] == "result:pvc"
    assert terminated["startedAt"] <= terminated["finishedAt"]
    assert main["image"] == "busybox:1.36" and main["containerID"] and main["ready"] is False
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions == {"PodScheduled": "True", "Initialized": "True", "Ready": "False",
                          "ContainersReady": "False"}
    assert pod["status"]["hostIP"] == pod["status"]["podIP"] == "127.0.0.1"
    assert pod["status"]["startTime"]

    assert await pod_log(cluster, "shared", "first") == "first-ran\n"
    assert await pod_log(cluster, "shared", "main") == "one\ntwo\nshared\nto-stderr\n"
    pvc_dir = host_agent.layout.pvc_dir("default", "claim")
    assert (pvc_dir / "kept").read_text() == "pvc\n"


async def test_failing_container_fails_the_pod_with_its_exit_code(
    cluster: EmbeddedCluster, host_agent: NodeAgent
) -> None:
    spec = {"containers": [shell("ok", "true"), shell("broken", "echo oops; exit 3")]}
    await cluster.create(pod_manifest("failing", spec))
    pod = await wait_for_pod(cluster, "failing", terminal)

    assert pod["status"]["phase"] == "Failed"
    broken = statuses(pod)["broken"]["state"]["terminated"]
    assert (broken["exitCode"], broken["reason"]) == (3, "Error")
    assert statuses(pod)["ok"]["state"]["terminated"]["exitCode"] == 0
    assert "broken" in pod["status"]["message"]


async def test_init_failure_fails_the_pod_without_running_containers(
    cluster: EmbeddedCluster, host_agent: NodeAgent, tmp_path: Path
) -> None:
    marker = tmp_path / "main-ran"
    spec = {
        "initContainers": [shell("setup", "exit 7"), shell("never", f"touch {marker}")],
        "containers": [shell("main", f"touch {marker}")],
    }
    await cluster.create(pod_manifest("init-fails", spec))
    pod = await wait_for_pod(cluster, "init-fails", terminal)

    assert pod["status"]["phase"] == "Failed"
    inits = statuses(pod, "initContainerStatuses")
    assert inits["setup"]["state"]["terminated"]["exitCode"] == 7
    assert inits["never"]["state"]["waiting"]["reason"] == "PodInitializing"
    assert statuses(pod)["main"]["state"]["waiting"]["reason"] == "PodInitializing"
    conditions = {c["type"]: c for c in pod["status"]["conditions"]}
    assert conditions["Initialized"]["status"] == "False"
    assert not marker.exists()


async def test_env_from_secret_config_map_and_fields_is_expanded_in_args(
    cluster: EmbeddedCluster, host_agent: NodeAgent
) -> None:
    await cluster.create({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "default"},
        "data": {"token": base64.b64encode(b"s3cret").decode()},
    })
    await cluster.create({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default"},
        "data": {"mode": "fast"},
    })
    container = {
        "name": "main",
        "image": "busybox",
        "command": ["sh", "-c"],
        "args": ['printf "%s" "$(TOKEN)|$(MODE)|$(POD)|$(GREETING)|" > /dev/termination-log;'
                 " printf '%s' '$$(TOKEN)' >> /dev/termination-log"],
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "MODE",
             "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "GREETING", "value": "hi-$(POD)"},
        ],
    }
    await cluster.create(pod_manifest("env", {"containers": [container]}))
    pod = await wait_for_pod(cluster, "env", terminal)

    terminated = statuses(pod)["main"]["state"]["terminated"]
    assert terminated["message"] == "s3cret|fast|env|hi-env|$(TOKEN)"


async def test_missing_secret_keeps_the_container_waiting_until_it_exists(
    cluster: EmbeddedCluster, host_agent: NodeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pod_worker, "CONFIG_RETRY_SECONDS", 0.1)
    container = shell("main", 'printf "$KEY" > /dev/termination-log')
    container["env"] = [
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "later", "key": "k"}}}
    ]
    await cluster.create(pod_manifest("waits", {"containers": [container]}))

    def config_error(pod: dict) -> bool:
        waiting = (statuses(pod).get("main") or {}).get("state", {}).get("waiting") or {}
        return waiting.get("reason") == "CreateContainerConfigError"

    pod = await wait_for_pod(cluster, "waits", config_error)
    assert pod["status"]["phase"] == "Pending"
    await cluster.create({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "later",
                                                            "namespace": "default"},
        "stringData": {"k": "now"},
    })
    pod = await wait_for_pod(cluster, "waits", terminal)
    assert statuses(pod)["main"]["state"]["terminated"]["message"] == "now"


async def test_sub_path_secret_volume_and_read_only_mounts(
    cluster: EmbeddedCluster, host_agent: NodeAgent, tmp_path: Path
) -> None:
    await cluster.create({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "files", "namespace": "default"},
        "data": {"a": base64.b64encode(b"alpha").decode(),
                 "b": base64.b64encode(b"beta").decode()},
    })
    out, secret, ro = (f"{tmp_path}/mnt/{name}" for name in ("out", "secret", "ro"))
    script = (
        f"echo sub > {out}/file; "
        f"cat {secret}/renamed; "
        f"stat -c %a {secret}/renamed; "
        f"test ! -e {secret}/a && echo only-items; "
        f"touch {ro}/x 2>/dev/null || echo read-only"
    )
    spec = {
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}},
            {"name": "secret", "secret": {"secretName": "files", "defaultMode": 0o600,
                                          "items": [{"key": "b", "path": "renamed"}]}},
        ],
        "containers": [shell("main", script, volumeMounts=[
            {"name": "data", "mountPath": out, "subPath": "runs/one"},
            {"name": "secret", "mountPath": secret},
            {"name": "data", "mountPath": ro, "readOnly": True},
        ])],
    }
    await cluster.create(pod_manifest("subpath", spec))
    pod = await wait_for_pod(cluster, "subpath", terminal)

    assert pod["status"]["phase"] == "Succeeded", str(pod["status"])
    pvc_dir = host_agent.layout.pvc_dir("default", "claim")
    assert (pvc_dir / "runs" / "one" / "file").read_text() == "sub\n"
    assert not (pvc_dir / "x").exists()
    assert await pod_log(cluster, "subpath", "main") == "beta600\nonly-items\nread-only\n"


async def test_termination_message_path_resolves_through_volume_mounts(
    cluster: EmbeddedCluster, host_agent: NodeAgent, tmp_path: Path
) -> None:
    results = f"{tmp_path}/mnt/cyclone"
    spec = {
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "claim"}}],
        "containers": [shell(
            "main",
            f"mkdir -p {results}/results; head -c 5000 /dev/zero | tr '\\0' x"
            f" > {results}/results/__result__",
            terminationMessagePath=f"{results}/results/__result__",
            volumeMounts=[{"name": "data", "mountPath": results, "subPath": "run-1"}],
        )],
    }
    await cluster.create(pod_manifest("results", spec))
    pod = await wait_for_pod(cluster, "results", terminal)

    message = statuses(pod)["main"]["state"]["terminated"]["message"]
    assert message == "x" * 4096
    on_pvc = host_agent.layout.pvc_dir("default", "claim") / "run-1" / "results" / "__result__"
    assert on_pvc.stat().st_size == 5000


async def test_container_without_command_or_args_fails_with_a_start_error(
    cluster: EmbeddedCluster, host_agent: NodeAgent
) -> None:
    spec = {"containers": [{"name": "main", "image": "alpine"}]}
    await cluster.create(pod_manifest("no-command", spec))
    pod = await wait_for_pod(cluster, "no-command", terminal)

    terminated = statuses(pod)["main"]["state"]["terminated"]
    assert pod["status"]["phase"] == "Failed"
    assert terminated["reason"] == "StartError"
    assert "entrypoint" in terminated["message"]


def _pid_of(agent: NodeAgent, pod: dict, container: str) -> int:
    state = agent.layout.container_dir(pod["metadata"]["uid"], container)
    return int((state / "pid").read_text())


def _process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


async def test_deleting_a_pod_kills_its_processes_and_cleans_up(
    cluster: EmbeddedCluster, host_agent: NodeAgent
) -> None:
    spec = {
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "containers": [shell("sleeper", "sleep 1000")],
    }
    await cluster.create(pod_manifest("sleeper", spec))
    pod = await wait_for_pod(cluster, "sleeper", lambda p: p["status"].get("phase") == "Running")
    pid = _pid_of(host_agent, pod, "sleeper")
    pod_dir = host_agent.layout.pod_dir(pod["metadata"]["uid"])
    assert pod_dir.is_dir() and not _process_gone(pid)

    await cluster.delete(kinds.POD, "sleeper", "default")
    await wait_for_pod_gone(cluster, "sleeper")

    assert _process_gone(pid)
    assert not pod_dir.exists()


async def test_pod_deleted_at_once_still_has_its_processes_killed(
    cluster: EmbeddedCluster, host_agent: NodeAgent
) -> None:
    await cluster.create(pod_manifest("vanishes", {"containers": [shell("s", "sleep 1000")]}))
    pod = await wait_for_pod(cluster, "vanishes", lambda p: p["status"].get("phase") == "Running")
    pid = _pid_of(host_agent, pod, "s")

    await cluster.delete(kinds.POD, "vanishes", "default", grace_period_seconds=0)

    pod_dir = host_agent.layout.pod_dir(pod["metadata"]["uid"])
    for _ in range(200):
        if _process_gone(pid) and not pod_dir.exists():
            break
        await asyncio.sleep(0.05)
    assert _process_gone(pid)
    assert not pod_dir.exists()


async def test_node_is_registered_ready_with_log_dir(
    cluster: EmbeddedCluster, host_agent: NodeAgent
) -> None:
    node = await cluster.get(kinds.NODE, NODE)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node["metadata"]["annotations"]["node.cyclone.dev/log-dir"] == str(
        host_agent.layout.logs_dir
    )
    assert node["status"]["capacity"]["pods"] == "110"
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.")


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline and not _process_gone(int(entry.name)):
                found.append(int(entry.name))
    return found


async def test_deletion_kills_processes_that_ignore_sigterm_or_left_the_session(
    cluster: EmbeddedCluster, host_agent: NodeAgent, tmp_path: Path
) -> None:
    marker = f"{tmp_path}/daemon"
    shared, volume, mount = signal_volume(tmp_path)
    script = (
        f"setsid sh -c 'exec -a {marker} sleep 1000' & "
        f"trap '' TERM; while [ -z \"$(pgrep -f {marker})\" ]; do sleep 0.02; done; touch "
        "/signal/started; sleep 1000"
    )
    spec = {"terminationGracePeriodSeconds": 1, "volumes": [volume],
            "containers": [shell("stubborn", script, volumeMounts=[mount])]}
    await cluster.create(pod_manifest("stubborn", spec))
    await wait_for_pod(cluster, "stubborn", lambda p: p["status"].get("phase") == "Running")
    await until(lambda: (shared / "started").exists())
    assert _processes_with(marker)

    await cluster.delete(kinds.POD, "stubborn", "default")
    await wait_for_pod_gone(cluster, "stubborn")

    assert _processes_with(marker) == []


async def test_deletion_gives_the_command_its_sigterm_and_grace(
    cluster: EmbeddedCluster, host_agent: NodeAgent, tmp_path: Path
) -> None:
    shared, volume, mount = signal_volume(tmp_path)
    script = (
        "trap 'printf graceful > /dev/termination-log; exit 0' TERM; "
        "touch /signal/ready; while true; do sleep 0.05; done"
    )
    spec = {"terminationGracePeriodSeconds": 30, "volumes": [volume],
            "containers": [shell("polite", script, volumeMounts=[mount])]}
    pod = await cluster.create(pod_manifest("polite", spec))
    await until(lambda: (shared / "ready").exists())

    await cluster.delete(kinds.POD, "polite", "default")

    def stopped(p: dict) -> bool:
        return "terminated" in (statuses(p).get("polite") or {}).get("state", {})

    version = pod["metadata"]["resourceVersion"]
    last = None
    async for event in cluster.watch(kinds.POD, "default", resource_version=version,
                                     field_selector="metadata.name=polite"):
        if event.type == "DELETED":
            break
        last = event.object
    assert last is not None and stopped(last)
    terminated = statuses(last)["polite"]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["message"]) == (0, "graceful")


async def test_working_dir_missing_on_the_host_is_private_to_each_container(
    cluster: EmbeddedCluster, host_agent: NodeAgent, tmp_path: Path
) -> None:
    work = f"{tmp_path}/work"
    data = [{"name": "data", "mountPath": f"{work}/data"}]
    spec = {
        "volumes": [{"name": "data", "emptyDir": {}}],
        "initContainers": [shell("writer", "echo mine > f; echo shared > data/x; pwd",
                                 workingDir=work, volumeMounts=data)],
        "containers": [
            shell("reader", "test ! -e f && echo private; cat data/x; echo again > f",
                  workingDir=work, volumeMounts=data),
            shell("other", "sleep 0.2; test ! -e f && echo private", workingDir=work),
        ],
    }
    await cluster.create(pod_manifest("private-work", spec))
    pod = await wait_for_pod(cluster, "private-work", terminal)

    assert pod["status"]["phase"] == "Succeeded", str(pod["status"])
    assert await pod_log(cluster, "private-work", "writer") == f"{work}\n"
    assert await pod_log(cluster, "private-work", "reader") == "private\nshared\n"
    assert await pod_log(cluster, "private-work", "other") == "private\n"
    assert not (tmp_path / "work" / "f").exists()
