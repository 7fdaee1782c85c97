"""The pod side: warning events copied to stages, orphan pods removed."""

from __future__ import annotations

import asyncio

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound

from .gates import Gate
from .harness import NAMESPACE, running_env, shell_stage, workflow, workflow_run
from .test_control import gate_script, stage_running


async def test_warning_events_of_a_stage_pod_are_copied_to_the_stage(tmp_path):
    gate = Gate()
    config = EngineConfig(gc_enabled=False, watch_pod_events=True)
    async with running_env(tmp_path, config) as env:
        await env.apply(
            shell_stage("build", gate_script(gate)),
            workflow("wf", [{"name": "build"}]),
            workflow_run("r1", "wf"),
        )
        run = await env.wait_run("r1", stage_running("build"))
        pod = run["status"]["stages"]["build"]["pod"]["name"]
        for name, kind, reason in (("e1", "Warning", "FailedMount"), ("e2", "Normal", "Pulled")):
            await env.cluster.create({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": NAMESPACE},
                "type": kind, "reason": reason, "message": f"{reason} happened", "count": 2,
                "lastTimestamp": "2026-01-01T00:00:00Z",
            })
        run = await env.wait_run(
            "r1", lambda r: bool(r["status"]["stages"]["build"].get("events"))
        )
        gate.touch()
        await env.wait_phase("r1", "Succeeded")
    [event] = run["status"]["stages"]["build"]["events"]
    assert (event["name"], event["reason"], event["count"]) == ("e1", "FailedMount", 2)


def cyclone_pod(name: str, run: str, run_uid: str | None = None) -> dict:
    """A stage pod as the engine would have made it for ``run``."""
    annotations = {keys.ANNOTATION_META_NAMESPACE: NAMESPACE}
    if run_uid:
        annotations[keys.ANNOTATION_WORKFLOWRUN_UID] = run_uid
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": NAMESPACE,
            "labels": {keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
                       keys.LABEL_POD_KIND: keys.POD_KIND_WORKLOAD,
                       keys.LABEL_WORKFLOWRUN: run},
            "annotations": annotations,
        },
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "c0", "image": "busybox", "command": ["sh", "-c", "sleep 30"]}
        ]},
    }


async def gone(env, pod: str, within: float = 60.0) -> bool:
    """Whether the pod is deleted within `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            await env.cluster.get(kinds.POD, pod, NAMESPACE)
        except NotFound:
            return True
        await asyncio.sleep(0.05)
    return False


async def pod_looked_at(env, pod: dict, within: float = 30.0) -> None:
    """Return once the engine's pod cache holds `pod` as stored and its pod controller has
    reconciled it afresh: a pod still there afterwards is one it decided to keep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pods = env.engine.caches.execution[keys.CONTROL_CLUSTER_NAME].pods
    name, version = pod["metadata"]["name"], pod["metadata"]["resourceVersion"]
    while int(((pods.get(NAMESPACE, name) or {}).get("metadata") or {}).get(
            "resourceVersion") or 0) < int(version):
        assert loop.time() < deadline, f"the engine's cache never showed pod {name}"
        await asyncio.sleep(0.02)
    await env.engine.pod_controller().requeue_and_wait(f"{NAMESPACE}/{name}")


async def test_pods_of_a_vanished_run_are_deleted(env):
    await env.cluster.create(cyclone_pod("orphan", "gone-run"))
    assert await gone(env, "orphan"), "the orphan pod was not deleted"


async def test_pods_of_a_deleted_run_are_deleted_when_a_run_of_its_name_exists(env):
    await env.apply(shell_stage("build", "sleep 30"), workflow("wf", [{"name": "build"}]),
                    workflow_run("again", "wf"))
    run = await env.wait_run("again", stage_running("build"))
    await env.cluster.create(cyclone_pod("left-by-the-deleted-run", "again",
                                         "uid-of-the-deleted-run"))
    assert await gone(env, "left-by-the-deleted-run"), "the pod of the deleted run was kept"
    current = run["status"]["stages"]["build"]["pod"]["name"]
    await pod_looked_at(env, await env.cluster.get(kinds.POD, current, NAMESPACE))
    await env.cluster.get(kinds.POD, current, NAMESPACE)


async def test_finished_stage_pod_with_running_sidecar_is_deleted(env, tmp_path):
    await env.apply(
        shell_stage("main", "true", pod={"spec": {"containers": [
            {"name": "main", "image": "busybox", "command": ["sh", "-c", "echo ok:1 > "
                                                             "/cyclone/results/__result__"]},
            {"name": "helper", "image": "busybox",
             "command": ["sh", "-c", f"while [ ! -e {tmp_path / 'never'} ]; do sleep 0.05; done"]},
        ]}}),
        workflow("wf", [{"name": "main"}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_phase("r1", "Succeeded")
    pod = run["status"]["stages"]["main"]["pod"]["name"]
    assert await gone(env, pod), "the pod of the finished stage is still there"


async def test_a_cluster_the_tenant_never_opened_fails_the_run(env):
    await env.apply(
        shell_stage("a", "true"),
        workflow("wf", [{"name": "a"}]),
        workflow_run("r1", "wf", executionContext={"cluster": "nowhere"}),
    )
    run = await env.wait_phase("r1", "Failed")
    assert run["status"]["overall"]["reason"] == "TenancyViolation"
    assert "spec.executionContext.cluster" in run["status"]["overall"]["message"]
    assert await env.pods() == []
