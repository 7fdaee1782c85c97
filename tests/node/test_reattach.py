"""A node agent killed with SIGKILL and restarted reattaches to its containers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node.layout import NodeLayout
from node.helpers import NODE, pod_manifest, statuses, terminal, until, wait_for_pod

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")


async def start_agent(db: Path, data_dir: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cyclone.node", "--embedded", str(db), "--data-dir",
        str(data_dir), "--node-name", NODE, "--heartbeat-seconds", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def test_restarted_agent_reattaches_without_running_anything_twice(
    tmp_path: Path,
) -> None:
    db, data_dir, gates = tmp_path / "cluster.db", tmp_path / "node", tmp_path / "gates"
    gates.mkdir()
    runs = tmp_path / "runs"
    layout = NodeLayout(data_dir.resolve())

    def waiting_container(name: str, code: int) -> dict:
        script = (
            f"echo {name} >> {runs}; while [ ! -e {gates}/{name} ]; do sleep 0.05; done;"
            f" echo {name}-says-{code} > /dev/termination-log; echo {name}-done; exit {code}"
        )
        return {"name": name, "image": "busybox", "command": ["sh", "-c", script]}

    spec = {
        "initContainers": [
            {"name": "init", "image": "busybox", "command": ["sh", "-c", f"echo init >> {runs}"]}
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
        finally:
            for process in (agent, second):
                if process is not None and process.returncode is None:
                    process.send_signal(signal.SIGKILL)
                    await process.wait()

    assert pod["status"]["phase"] == "Failed"
    late = statuses(pod)["late"]["state"]["terminated"]
    assert (late["exitCode"], late["message"]) == (5, "late-says-5\n")
    assert sorted(runs.read_text().split()) == ["early", "init", "late"]
    log = layout.log_path("default", "survivor", "late").read_text()
    assert log == "late-done\n"
