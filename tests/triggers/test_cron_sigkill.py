"""The engine, in its own process, is SIGKILLed right across cron firings (up to 0.3 s
after a scheduled time, before or after its run is created and recorded) and restarted:
every scheduled time still gets exactly one run, and ``status.count`` counts them. The
period is longer than an engine restart, so no two ticks fall in one outage."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from cyclone.engine.core.cron import parse_schedule
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster

from .support import NAMESPACE, prepare_tenant, shell_stage, workflow_object
from .test_cron_engine import cron_trigger, recorded, trigger_runs

ENGINE_SCRIPT = Path(__file__).parents[1] / "engine" / "engine_process.py"
SCHEDULE = "*/6 * * * * *"
PERIOD = 6
KILLS = 2
STARTUP_SECONDS = 20


async def start_engine(db: Path) -> asyncio.subprocess.Process:
    """The engine in a new process, returned once it says it is ready."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ENGINE_SCRIPT), str(db),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), STARTUP_SECONDS)
    assert line.strip() == b"ready", line
    return process


def fired_times(runs: list[dict]) -> list[int]:
    return sorted(int(r["metadata"]["name"].rsplit("-", 1)[1]) for r in runs)


async def test_sigkill_across_firings_neither_loses_nor_doubles_one(tmp_path):
    seed = int(os.environ.get("CYCLONE_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    db = tmp_path / "cluster.db"
    cluster = EmbeddedCluster(db, poll_interval=0.01)
    await cluster.start()
    schedule = parse_schedule(SCHEDULE)
    engine = None
    try:
        await prepare_tenant(cluster)
        await cluster.create(shell_stage("step", "true"))
        await cluster.create(workflow_object("wf", ["step"]))
        await cluster.create(cron_trigger("ticker", SCHEDULE))
        engine = await start_engine(db)
        deadline = time.monotonic() + 20
        while not await trigger_runs(cluster, "ticker"):
            assert time.monotonic() < deadline, "the first firing never came"
            await asyncio.sleep(0.05)
        for _ in range(KILLS):
            tick = schedule.next_after(datetime.now(UTC))
            pause = (tick - datetime.now(UTC)).total_seconds() + rng.uniform(0.0, 0.3)
            await asyncio.sleep(max(pause, 0))
            engine.send_signal(signal.SIGKILL)
            await engine.wait()
            engine = await start_engine(db)
        settle = schedule.next_after(datetime.now(UTC))
        deadline = time.monotonic() + 30
        while not await recorded(cluster, "ticker", settle):
            assert time.monotonic() < deadline, f"seed {seed}: firings stopped after restarts"
            await asyncio.sleep(0.05)
        engine.send_signal(signal.SIGKILL)
        await engine.wait()
        runs = await trigger_runs(cluster, "ticker")
        trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, "ticker", NAMESPACE)
    finally:
        if engine is not None and engine.returncode is None:
            engine.send_signal(signal.SIGKILL)
            await engine.wait()
        await cluster.close()

    times = fired_times(runs)
    expected = list(range(times[0], times[-1] + 1, PERIOD))
    assert times == expected, f"seed {seed}: fired {times}"
    assert trigger["status"]["count"] == len(runs), f"seed {seed}"
