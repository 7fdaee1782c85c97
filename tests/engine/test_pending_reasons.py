"""A stage whose pod cannot start shows why in its status and fails at the pending timeout
(`pod_pending_timeout_seconds`) with that reason; its pod is deleted."""

from __future__ import annotations

import contextlib

import pytest
from support.clusters import eventually

from cyclone.engine.config import EngineConfig
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound

from .harness import (
    BACKENDS,
    NAMESPACE,
    PVC,
    overall,
    running_env,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)

PENDING_TIMEOUT = 4.0
CONFIG = EngineConfig(gc_enabled=False, watch_pod_events=False,
                      pod_pending_timeout_seconds=PENDING_TIMEOUT)


@pytest.fixture
async def env(tmp_path, backend):
    async with running_env(tmp_path, CONFIG, backend=backend) as environment:
        yield environment


def running_with_message(run: dict) -> bool:
    status = stage_status(run, "build")
    return status.get("phase") == "Running" and bool(status.get("message"))


async def shown_then_failed(env, within: float = 60) -> tuple[dict, dict]:
    """The stage status while it waits (with a message), and the run once it failed."""
    waiting = await env.wait_run("r1", running_with_message, within=within)
    failed = await env.wait_phase("r1", "Failed", within=within)
    return stage_status(waiting, "build"), failed


async def pods_gone(env) -> None:
    await eventually(lambda: _no_pods(env), timeout=30)


async def _no_pods(env) -> bool:
    return not [p for p in await env.pods() if not p["metadata"].get("deletionTimestamp")]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_pod_whose_secret_is_missing_shows_the_kubelets_reason_and_fails_at_the_timeout(
        env):
    stage = shell_stage("build", "echo never")
    stage["spec"]["pod"]["spec"]["containers"][0]["env"] = [{
        "name": "TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "no-such-secret", "key": "token"}}}]
    await env.apply(stage, workflow("wf", [{"name": "build"}]), workflow_run("r1", "wf"))

    waiting, run = await shown_then_failed(env)

    assert waiting["reason"] == "PodPending"
    assert waiting["message"].startswith('container "main": CreateContainerConfigError')
    assert "no-such-secret" in waiting["message"]
    failed = stage_status(run, "build")
    assert failed["phase"] == "Failed"
    assert failed["reason"] == "CreateContainerConfigError"
    assert f"did not start within {PENDING_TIMEOUT:g}s" in failed["message"]
    assert "no-such-secret" in failed["message"]
    assert overall(run)["phase"] == "Failed"
    await pods_gone(env)


@pytest.mark.parametrize("backend", [BACKENDS[1]], indirect=True)
async def test_a_pod_no_node_fits_shows_the_schedulers_message_and_fails_at_the_timeout(env):
    stage = shell_stage("build", "echo never")
    stage["spec"]["pod"]["spec"]["nodeSelector"] = {"cyclone.dev/no-such-node": "true"}
    await env.apply(stage, workflow("wf", [{"name": "build"}]), workflow_run("r1", "wf"))

    waiting, run = await shown_then_failed(env)

    assert waiting["reason"] == "PodPending"
    assert "nodes are available" in waiting["message"]
    failed = stage_status(run, "build")
    assert failed["reason"] == "Unschedulable"
    assert "nodes are available" in failed["message"]
    assert overall(run)["phase"] == "Failed"
    await pods_gone(env)


@pytest.mark.parametrize("backend", [BACKENDS[1]], indirect=True)
async def test_a_run_whose_tenant_claim_is_never_bound_names_it_and_fails_at_the_timeout(env):
    await _unservable_claim(env.cluster)
    await env.apply(shell_stage("build", "echo never"), workflow("wf", [{"name": "build"}]),
                    workflow_run("r1", "wf"))

    waiting, run = await shown_then_failed(env)

    expected = f"PersistentVolumeClaim {PVC} is not bound (storage class cyclone-none)"
    assert waiting["message"] == expected
    failed = stage_status(run, "build")
    assert failed["reason"] == "PersistentVolumeClaimNotBound"
    assert failed["message"].endswith(expected)
    assert overall(run)["phase"] == "Failed"
    await pods_gone(env)


async def _unservable_claim(cluster) -> None:
    """The tenant PVC made again with a class no provisioner serves, so it stays Pending."""
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.PERSISTENT_VOLUME_CLAIM, PVC, NAMESPACE)

    async def gone() -> bool:
        try:
            await cluster.get(kinds.PERSISTENT_VOLUME_CLAIM, PVC, NAMESPACE)
        except NotFound:
            return True
        return False

    await eventually(gone, timeout=30)
    await cluster.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": PVC, "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "cyclone-none",
                 "resources": {"requests": {"storage": "1Gi"}}},
    })
