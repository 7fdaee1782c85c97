"""The engine is SIGKILLed at random points and restarted: every run still finishes, with
exactly one successful pod per stage."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from cyclone.api import keys
from cyclone.kube import kinds

from .harness import BACKENDS, NAMESPACE, overall, running_env, shell_stage, workflow, workflow_run

RUNS = {"embedded": 20, "kube": 8}
STAGES = 10
KILLS = {"embedded": 8, "kube": 4}
ENGINE_SCRIPT = Path(__file__).with_name("engine_process.py")


def ten_stage_dag() -> list[dict]:
    """Two roots, a fan-out, a fan-in and a tail: s0..s9."""
    depends = {
        "s0": [], "s1": [], "s2": ["s0"], "s3": ["s0", "s1"], "s4": ["s1"],
        "s5": ["s2", "s3"], "s6": ["s3", "s4"], "s7": ["s5"], "s8": ["s6"], "s9": ["s7", "s8"],
    }
    return [{"name": name, "depends": deps} for name, deps in depends.items()]


async def start_engine(target: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(ENGINE_SCRIPT), str(target),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_engine_survives_sigkill_at_random_points(tmp_path, backend):
    seed = int(os.environ.get("CYCLONE_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    runs_count, kills = RUNS[backend], KILLS[backend]
    async with running_env(tmp_path, with_engine=False, backend=backend) as env:
        await env.apply(
            *(shell_stage(f"s{i}", f"echo 'stage:s{i}' > /cyclone/results/__result__")
              for i in range(STAGES)),
            workflow("dag", ten_stage_dag()),
        )
        if backend == "kube":
            from support.kube_engine import engine_plane

            target = engine_plane().kubeconfig
        else:
            target = env.data_dir / "cluster.db"
        engine = await start_engine(Path(target))
        try:
            for index in range(runs_count):
                await env.apply(workflow_run(f"run-{index:02d}", "dag"))
            kills_mid_run = 0
            for _ in range(kills):
                await asyncio.sleep(rng.uniform(0.3, 1.5))
                listed = await env.cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)
                if any(overall(r).get("phase") != "Succeeded" for r in listed.items):
                    kills_mid_run += 1
                engine.send_signal(signal.SIGKILL)
                await engine.wait()
                engine = await start_engine(Path(target))
            runs = []
            for index in range(runs_count):
                runs.append(await env.wait_phase(f"run-{index:02d}", "Succeeded", within=60))
        finally:
            if engine.returncode is None:
                engine.send_signal(signal.SIGKILL)
                await engine.wait()
        pods = await env.pods(f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}")

    assert kills_mid_run > 0, f"seed {seed}: every kill came after the runs had finished"
    assert all(overall(run)["phase"] == "Succeeded" for run in runs), f"seed {seed}"
    per_stage = Counter(
        (p["metadata"]["labels"][keys.LABEL_WORKFLOWRUN], p["metadata"]["labels"][keys.LABEL_STAGE])
        for p in pods
    )
    succeeded = Counter(
        (p["metadata"]["labels"][keys.LABEL_WORKFLOWRUN], p["metadata"]["labels"][keys.LABEL_STAGE])
        for p in pods if p["status"]["phase"] == "Succeeded"
    )
    expected = {(f"run-{r:02d}", f"s{s}") for r in range(runs_count) for s in range(STAGES)}
    assert set(per_stage) == expected, f"seed {seed}"
    assert set(per_stage.values()) == {1}, f"seed {seed}: {per_stage.most_common(3)}"
    assert set(succeeded.values()) == {1} and set(succeeded) == expected, f"seed {seed}"
    for run in runs:
        stages = run["status"]["stages"]
        assert sorted(stages) == sorted(f"s{i}" for i in range(STAGES))
        for name, entry in stages.items():
            assert entry["status"]["phase"] == "Succeeded"
            assert entry["outputs"] == [{"key": "stage", "value": name}]
