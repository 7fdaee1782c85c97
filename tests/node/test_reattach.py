"""A node agent killed with SIGKILL and restarted reattaches to its containers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node.layout import NodeLayout
from node.helpers import (
    NODE,
    pod_manifest,
    signal_volume,
    statuses,
    terminal,
    until,
    wait_for_pod,
)

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")


async def start_agent(db: Path, data_dir: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cyclone.node", "--embedded", str(db), "--data-dir",
        str(data_dir), "--node-name", NODE, "--heartbeat-seconds", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def record_phases(cluster: EmbeddedCluster, name: str, phases: list[str]) -> None:
    async for event in cluster.watch(kinds.POD, "default", field_selector=f"metadata.name={name}"):
        phases.append((event.object.get("status") or {}).get("phase", ""))


async def stop(*processes: asyncio.subprocess.Process | None) -> None:
    for process in processes:
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()


def process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


async def test_restarted_agent_reattaches_without_running_anything_twice(
    tmp_path: Path,
) -> None:
    db, data_dir = tmp_path / "cluster.db", tmp_path / "node"
    gates, volume, mount = signal_volume(tmp_path)
    runs = gates / "runs"
    layout = NodeLayout(data_dir.resolve())

    def waiting_container(name: str, code: int) -> dict:
        script = (
            f"echo {name} >> /signal/runs; while [ ! -e /signal/{name} ]; do sleep 0.05; done;"
            f" echo {name}-says-{code} > /dev/termination-log; echo {name}-done; exit {code}"
        )
        return {"name": name, "image": "busybox", "command": ["sh", "-c", script],
                "volumeMounts": [mount]}

    spec = {
        "volumes": [volume],
        "initContainers": [
            {"name": "init", "image": "busybox", "volumeMounts": [mount],
             "command": ["sh", "-c", "echo init >> /signal/runs"]}
        ],
        "containers": [waiting_container("early", 0), waiting_container("late", 5)],
    }
    async with EmbeddedCluster(db, poll_interval=0.02) as cluster:
        agent = await start_agent(db, data_dir)
        second: asyncio.subprocess.Process | None = None
        try:
            pod = await cluster.create(pod_manifest("survivor", spec))
            uid = pod["metadata"]["uid"]
            await wait_for_pod(cluster, "survivor", lambda p: p["status"].get("phase") == "Running")

            agent.send_signal(signal.SIGKILL)
            await agent.wait()
            (gates / "early").touch()
            await until(lambda: (layout.container_dir(uid, "early") / "exit").exists())

            phases_seen: list[str] = []
            watching = asyncio.create_task(record_phases(cluster, "survivor", phases_seen))
            second = await start_agent(db, data_dir)

            def early_done(p: dict) -> bool:
                state = statuses(p)["early"]["state"]
                return "terminated" in state and "running" in statuses(p)["late"]["state"]

            pod = await wait_for_pod(cluster, "survivor", early_done)
            early = statuses(pod)["early"]["state"]["terminated"]
            assert (early["exitCode"], early["message"]) == (0, "early-says-0\n")
            assert pod["status"]["phase"] == "Running"

            (gates / "late").touch()
            pod = await wait_for_pod(cluster, "survivor", terminal)
            watching.cancel()
            assert "Pending" not in phases_seen
        finally:
            await stop(agent, second)

    assert pod["status"]["phase"] == "Failed"
    late = statuses(pod)["late"]["state"]["terminated"]
    assert (late["exitCode"], late["message"]) == (5, "late-says-5\n")
    assert sorted(runs.read_text().split()) == ["early", "init", "late"]
    log = layout.log_path("default", "survivor", "late").read_text()
    assert log == "late-done\n"


async def test_processes_of_a_pod_removed_while_the_agent_was_down_are_killed(
    tmp_path: Path,
) -> None:
    db, data_dir = tmp_path / "cluster.db", tmp_path / "node"
    layout = NodeLayout(data_dir.resolve())
    spec = {"containers": [{"name": "s", "image": "busybox", "command": ["sleep", "1000"]}]}
    async with EmbeddedCluster(db, poll_interval=0.02) as cluster:
        agent = await start_agent(db, data_dir)
        second: asyncio.subprocess.Process | None = None
        try:
            pod = await cluster.create(pod_manifest("orphan", spec))
            await wait_for_pod(cluster, "orphan", lambda p: p["status"].get("phase") == "Running")
            pod_dir = layout.pod_dir(pod["metadata"]["uid"])
            pid = int((layout.container_dir(pod["metadata"]["uid"], "s") / "pid").read_text())
            await stop(agent)
            await cluster.delete(kinds.POD, "orphan", "default", grace_period_seconds=0)
            assert not process_gone(pid)

            second = await start_agent(db, data_dir)
            await until(lambda: process_gone(pid) and not pod_dir.exists())
        finally:
            await stop(agent, second)
