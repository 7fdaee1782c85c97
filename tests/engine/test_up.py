"""`cyclone up` as a process: ready line, clean stop, and a run that survives SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster

from .gates import Gate
from .harness import NAMESPACE, PVC, overall, shell_stage, stage_status, workflow, workflow_run
from .test_control import gate_script

ROOT = Path(__file__).parents[2]


async def start_up(data_dir: Path) -> asyncio.subprocess.Process:
    code = (
        "from cyclone.up import UpOptions, run_up; "
        f"run_up(UpOptions(data_dir={str(data_dir)!r}, port=0))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert b"Cyclone ready" in line and str(data_dir).encode() in line
    return process


async def wait_for(cluster, name: str, predicate, within: float = 30.0) -> dict:
    async with asyncio.timeout(within):
        while True:
            run = await cluster.get(kinds.WORKFLOW_RUN, name, NAMESPACE)
            if predicate(run):
                return run
            await asyncio.sleep(0.05)


async def test_up_creates_tenant_and_stops_cleanly_on_sigterm(tmp_path):
    process = await start_up(tmp_path)
    cluster = EmbeddedCluster(tmp_path / "cluster.db")
    try:
        await cluster.get(kinds.NAMESPACE, NAMESPACE)
        await cluster.get(kinds.PERSISTENT_VOLUME_CLAIM, PVC, NAMESPACE)
    finally:
        await cluster.close()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0


async def test_run_continues_after_up_is_killed(tmp_path):
    gate = Gate()
    process = await start_up(tmp_path)
    cluster = EmbeddedCluster(tmp_path / "cluster.db")
    try:
        for obj in (
            shell_stage("first", gate_script(gate)),
            shell_stage("second", "echo done:yes > /cyclone/results/__result__"),
            workflow("wf", [{"name": "first"}, {"name": "second", "depends": ["first"]}]),
            workflow_run("r1", "wf"),
        ):
            await cluster.create(obj)
        await wait_for(cluster, "r1", lambda r: stage_status(r, "first").get("phase") == "Running")
        process.send_signal(signal.SIGKILL)
        await process.wait()
        gate.touch()
        process = await start_up(tmp_path)
        run = await wait_for(
            cluster, "r1", lambda r: overall(r).get("phase") in ("Succeeded", "Failed")
        )
        assert overall(run)["phase"] == "Succeeded", run["status"]
        assert stage_status(run, "second")["phase"] == "Succeeded"
    finally:
        await cluster.close()
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)
