"""The engine's run logs and metrics, on the embedded store and a real kube-apiserver.

Counters are read as deltas of the process's registry, under a project name of the test's
own, so other tests in the process do not matter."""

from __future__ import annotations

import asyncio
import logging
import secrets

import pytest
from prometheus_client import REGISTRY

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.manager import Engine
from cyclone.kube import kinds

from .harness import (
    BACKENDS,
    NAMESPACE,
    overall,
    running_env,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

RUN_LOGGER = "cyclone.engine.runs"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def project_run(name: str, workflow_name: str, project: str) -> dict:
    run = workflow_run(name, workflow_name)
    run["metadata"]["labels"] = {keys.LABEL_PROJECT: project}
    return run


def records(caplog: pytest.LogCaptureFixture, run: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == RUN_LOGGER and getattr(r, "run", "") == run]


async def test_a_finished_run_is_logged_and_counted_by_phase(env, backend, caplog):
    caplog.set_level(logging.INFO, logger=RUN_LOGGER)
    project = f"metered-{secrets.token_hex(3)}"
    cluster_kind = "remote" if backend == "kube" else "embedded"
    patches_before = sample("cyclone_kube_client_requests_total", cluster=cluster_kind,
                            verb="PATCH", code="200")
    labels = {"namespace": NAMESPACE, "project": project}
    await env.apply(
        shell_stage("fine", "true"), shell_stage("broken", "exit 3"),
        workflow("wf", [{"name": "fine"}, {"name": "broken", "depends": ["fine"]}]),
        project_run("r1", "wf", project),
    )
    run = await env.wait_phase("r1", "Failed", within=60)
    assert stage_status(run, "broken")["phase"] == "Failed"
    await env.looked_at("r1")  # the gauges count the engine's cache, not the cluster

    assert sample("cyclone_runs_started_total", **labels) == 1
    assert sample("cyclone_runs_finished_total", **labels, phase="Failed") == 1
    assert sample("cyclone_run_duration_seconds_count", **labels, phase="Failed") == 1
    assert sample("cyclone_stages_finished_total", **labels, phase="Succeeded") == 1
    assert sample("cyclone_stages_finished_total", **labels, phase="Failed") == 1
    assert sample("cyclone_stage_duration_seconds_count", **labels, phase="Succeeded") == 1
    assert sample("cyclone_runs", **labels, phase="Failed") == 1
    assert sample("cyclone_runs_in_flight", **labels) == 0
    assert sample("cyclone_kube_client_requests_total", cluster=cluster_kind, verb="PATCH",
                  code="200") > patches_before

    started, ended = records(caplog, "r1")
    assert (started.getMessage(), started.namespace, started.project) == (
        f"run {NAMESPACE}/r1 started", NAMESPACE, project)
    assert ended.getMessage().startswith(f"run {NAMESPACE}/r1 ended: Failed")
    assert (ended.phase, ended.reason) == ("Failed", overall(run).get("reason"))
    assert ended.duration_seconds >= 0


async def test_an_engine_starting_logs_the_runs_it_resumes(tmp_path, backend, caplog):
    caplog.set_level(logging.INFO, logger=RUN_LOGGER)
    project = f"resumed-{secrets.token_hex(3)}"
    config = EngineConfig(gc_enabled=False, watch_pod_events=False)
    async with running_env(tmp_path, config, with_engine=False, backend=backend) as env:
        await env.apply(
            shell_stage("long", f"until [ -e {tmp_path}/never ]; do sleep 0.05; done"),
            workflow("wf", [{"name": "long"}]),
            project_run("r1", "wf", project),
        )

        async def engine_until(predicate) -> Engine:
            engine = Engine(env.cluster, config)
            task = asyncio.create_task(engine.run())
            try:
                await asyncio.wait_for(engine.ready.wait(), 30)
                await env.wait_run("r1", predicate, within=60)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return engine

        await engine_until(lambda r: stage_status(r, "long").get("phase") == "Running")
        assert [r.getMessage() for r in caplog.records if "resumed" in r.getMessage()] == []
        assert sample("cyclone_runs_in_flight", namespace=NAMESPACE, project=project) == 0

        await env.cluster.patch(kinds.WORKFLOW_RUN, "r1", {
            "metadata": {"annotations": {keys.ANNOTATION_STOP_FORCE: "true"}},
            "spec": {"stopped": True}}, NAMESPACE)
        second = await engine_until(lambda r: overall(r).get("phase") == "Cancelled")
        del second
    resumed = [r for r in caplog.records if r.getMessage().startswith("resumed")]
    assert [r.getMessage() for r in resumed] == [f"resumed 1 run: {NAMESPACE}/r1"]
    assert resumed[0].runs == [f"{NAMESPACE}/r1"]
    ended = [r for r in records(caplog, "r1") if r.getMessage().startswith("run ")]
    assert [r.phase for r in ended] == ["Running", "Cancelled"]
