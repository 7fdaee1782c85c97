"""After the end: notifications once, GC of pods and data, cleanup on deletion, retryOf."""

from __future__ import annotations

import asyncio

import pytest

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.names import gc_pod_name
from cyclone.kube import kinds
from cyclone.kube.clock import ManualClock
from cyclone.kube.errors import NotFound

from .gates import Gate
from .harness import (
    BACKENDS,
    NAMESPACE,
    PVC,
    allow_local_addresses,
    outputs,
    overall,
    running_env,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)
from .receiver import http_receiver

STAGE_PODS = f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}"


def node_claims(env):
    """Where the node agent keeps PVC contents (never under pod dirs it may be removing)."""
    return env.data_dir / "node" / "volumes" / "pvc"


def run_data_dir(env, run: str):
    matches = list(node_claims(env).rglob(f"{PVC}/workflowruns/{run}"))
    return matches[0] if matches else None


async def test_notification_reaches_webhook_once(tmp_path):
    async with http_receiver() as receiver, running_env(tmp_path) as env:
        await allow_local_addresses(env.cluster)
        await env.apply(
            shell_stage("a", "true"),
            workflow("wf", [{"name": "a"}], notification={
                "policy": "Always",
                "receivers": [{"type": "Webhook", "addresses": [receiver.url]}],
            }),
            workflow_run("r1", "wf"),
        )
        run = await env.wait_run(
            "r1", lambda r: receiver.url in (r.get("status") or {}).get("notifications", {})
        )
        assert run["status"]["notifications"][receiver.url]["result"] == "Succeeded"
        [body] = receiver.bodies
        assert body["metadata"]["name"] == "r1"
        assert body["status"]["overall"]["phase"] == "Succeeded"

        await env.cluster.patch(kinds.WORKFLOW_RUN, "r1",
                                {"metadata": {"annotations": {"touched": "yes"}}}, NAMESPACE)
        await env.wait_run("r1", lambda r: "touched" in r["metadata"].get("annotations", {}))
    async with http_receiver() as second, running_env(tmp_path) as env:
        await env.wait_phase("r1", "Succeeded")
    assert len(receiver.bodies) == 1
    assert second.bodies == []


async def test_notification_policy_failure_skips_successful_runs(tmp_path):
    async with http_receiver() as receiver, running_env(tmp_path) as env:
        await allow_local_addresses(env.cluster)
        await env.apply(
            shell_stage("ok", "true"),
            shell_stage("bad", "exit 1"),
            workflow("good", [{"name": "ok"}], notification={
                "policy": "Failure",
                "receivers": [{"type": "Webhook", "addresses": [receiver.url]}],
            }),
            workflow("broken", [{"name": "bad"}], notification={
                "policy": "Failure",
                "receivers": [{"type": "Webhook", "addresses": [receiver.url]}],
            }),
            workflow_run("g1", "good"),
            workflow_run("b1", "broken"),
        )
        await env.wait_run(
            "b1", lambda r: receiver.url in (r.get("status") or {}).get("notifications", {})
        )
        good = await env.wait_phase("g1", "Succeeded")
    assert [b["metadata"]["name"] for b in receiver.bodies] == ["b1"]
    assert not good["status"].get("notifications")


def artifact_stage(name: str) -> dict:
    return shell_stage(name, "true", pod={
        "outputs": {"artifacts": [{"name": "out", "path": "/out"}]},
        "spec": {"containers": [{"name": "main", "image": "busybox",
                                 "command": ["sh", "-c", "echo data > /out/file"]}]},
    })


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_gc_removes_pods_and_run_data_then_marks_cleaned(tmp_path, backend):
    config = EngineConfig(gc_enabled=True, gc_delay_seconds=0, gc_log_wait_seconds=0,
                          watch_pod_events=False)
    async with running_env(tmp_path, config, backend=backend) as env:
        await env.apply(
            artifact_stage("write"),
            workflow("wf", [{"name": "write"}]),
            workflow_run("r1", "wf"),
        )
        run = await env.wait_run("r1", lambda r: (r.get("status") or {}).get("cleaned") is True)
        assert overall(run)["phase"] == "Succeeded"
        assert await env.pods() == []
        assert list(node_claims(env).rglob(PVC)), "the tenant PVC was never mounted"
        assert run_data_dir(env, "r1") is None
        try:
            await env.cluster.get(kinds.POD, gc_pod_name("r1"), NAMESPACE)
            raise AssertionError("the GC pod was left behind")
        except NotFound:
            pass


async def gc_pod_exists(env) -> bool:
    try:
        await env.cluster.get(kinds.POD, gc_pod_name("r1"), NAMESPACE)
    except NotFound:
        return False
    return True


async def assert_not_collected(env) -> None:
    """The engine has just looked at r1 and left it, its stage pod and its data alone."""
    run = await env.looked_at("r1")
    assert not run["status"].get("cleaned"), run["status"]
    assert len(await env.pods(STAGE_PODS)) == 1
    assert not await gc_pod_exists(env)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_gc_waits_for_its_delay(tmp_path, backend):
    clock = ManualClock()
    config = EngineConfig(gc_enabled=True, gc_delay_seconds=600, gc_log_wait_seconds=0,
                          watch_pod_events=False)
    async with running_env(tmp_path, config, backend=backend, clock=clock) as env:
        await env.apply(
            artifact_stage("a"),
            workflow("wf", [{"name": "a"}]),
            workflow_run("r1", "wf"),
        )
        await env.wait_phase("r1", "Succeeded")
        await assert_not_collected(env)
        assert (run_data_dir(env, "r1") / "stages/a/artifacts/out/file").read_text() == "data\n"
        clock.advance(599)
        await assert_not_collected(env)
        assert run_data_dir(env, "r1") is not None
        clock.advance(1)
        run = await env.wait_run("r1", lambda r: (r.get("status") or {}).get("cleaned") is True)
        assert overall(run)["phase"] == "Succeeded"
        assert await env.pods() == []
        assert run_data_dir(env, "r1") is None


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_deleting_a_run_cleans_up_first(tmp_path, backend):
    config = EngineConfig(gc_enabled=True, gc_delay_seconds=3600, watch_pod_events=False)
    async with running_env(tmp_path, config, backend=backend) as env:
        await env.apply(
            shell_stage("a", "true"),
            workflow("wf", [{"name": "a"}]),
            workflow_run("r1", "wf"),
        )
        run = await env.wait_phase("r1", "Succeeded")
        assert "cyclone.dev/workflowrun-cleanup" in run["metadata"]["finalizers"]
        assert len(await env.pods()) == 1
        await env.cluster.delete(kinds.WORKFLOW_RUN, "r1", NAMESPACE)
        for _ in range(400):
            try:
                await env.run("r1")
            except NotFound:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the run was never released by its finalizer")
        assert await env.pods() == []


async def test_retry_of_reuses_succeeded_stages_and_outputs(tmp_path):
    flag = Gate()
    async with running_env(tmp_path) as env:
        await env.apply(
            shell_stage("build", "echo \"version:$$\" > /cyclone/results/__result__"),
            shell_stage("test", flag.check()),
            shell_stage("report",
                        "echo \"tested:${stages.build.outputs.version}\" "
                        "> /cyclone/results/__result__"),
            workflow("wf", [{"name": "build"}, {"name": "test", "depends": ["build"]},
                            {"name": "report", "depends": ["test"]}]),
            workflow_run("r1", "wf"),
        )
        first = await env.wait_phase("r1", "Failed")
        version = outputs(first, "build")["version"]
        flag.touch()
        await env.apply(workflow_run("r2", "wf", retryOf="r1"))
        second = await env.wait_phase("r2", "Succeeded")
    assert stage_status(second, "build")["reason"] == "ReusedFromRetry"
    assert outputs(second, "build") == {"version": version}
    assert outputs(second, "report") == {"tested": version}
    assert second["status"]["stages"]["build"]["pod"] == first["status"]["stages"]["build"]["pod"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_gc_pod_is_admitted_by_a_quota_that_demands_limits(tmp_path, backend):
    config = EngineConfig(gc_enabled=True, gc_delay_seconds=0, gc_log_wait_seconds=0,
                          watch_pod_events=False)
    async with running_env(tmp_path, config, backend=backend) as env:
        await env.cluster.create({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "tenant", "namespace": NAMESPACE},
            "spec": {"hard": {"limits.cpu": "2", "limits.memory": "2Gi",
                              "requests.cpu": "1", "requests.memory": "1Gi"}},
        })
        stage = shell_stage("a", "true")
        stage["spec"]["pod"]["spec"]["containers"][0]["resources"] = {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"}}
        await env.apply(stage, workflow("wf", [{"name": "a"}]), workflow_run("r1", "wf"))
        run = await env.wait_run("r1", lambda r: (r.get("status") or {}).get("cleaned") is True)
    assert overall(run)["phase"] == "Succeeded"


async def test_gc_waits_for_the_stage_logs_to_be_stored(tmp_path):
    clock = ManualClock()
    config = EngineConfig(gc_enabled=True, gc_delay_seconds=0, gc_log_wait_seconds=30,
                          watch_pod_events=False)
    async with running_env(tmp_path, config, clock=clock) as env:
        await env.apply(shell_stage("a", "echo hi"), workflow("wf", [{"name": "a"}]),
                        workflow_run("r1", "wf"))
        await env.wait_phase("r1", "Succeeded")
        await assert_not_collected(env)
        clock.advance(10)
        await assert_not_collected(env)
        [pod] = await env.pods()
        await env.cluster.patch(kinds.POD, pod["metadata"]["name"], {"metadata": {
            "annotations": {keys.ANNOTATION_LOGS_COLLECTED: "true"}}}, NAMESPACE)
        await env.wait_run("r1", lambda r: (r.get("status") or {}).get("cleaned") is True)
        assert clock.monotonic() < config.gc_log_wait_seconds
        assert await env.pods() == []


async def test_gc_goes_ahead_when_no_server_stores_the_logs(tmp_path):
    clock = ManualClock()
    config = EngineConfig(gc_enabled=True, gc_delay_seconds=0, gc_log_wait_seconds=30,
                          watch_pod_events=False)
    async with running_env(tmp_path, config, clock=clock) as env:
        await env.apply(shell_stage("a", "true"), workflow("wf", [{"name": "a"}]),
                        workflow_run("r1", "wf"))
        await env.wait_phase("r1", "Succeeded")
        await assert_not_collected(env)
        clock.advance(29)
        await assert_not_collected(env)
        clock.advance(1)
        run = await env.wait_run("r1", lambda r: (r.get("status") or {}).get("cleaned") is True)
        assert overall(run)["phase"] == "Succeeded"
        assert await env.pods() == []
