"""An embedded cluster, a host-runtime node agent and the engine, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.clusters import eventually

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.kube.clock import SYSTEM_CLOCK, Clock
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import AlreadyExists, NotFound
from cyclone.kube.protocol import Cluster
from cyclone.node.agent import NodeAgent
from cyclone.node.runtimes.host import HostRuntime
from cyclone.resolvers import resolver_image_overlays

NAMESPACE = keys.tenant_namespace(keys.DEFAULT_TENANT)
PVC = keys.tenant_pvc_name(keys.DEFAULT_TENANT)
API = keys.API_VERSION
BACKENDS = ["embedded", pytest.param("kube", marks=pytest.mark.k8s)]
"""For ``pytest.mark.parametrize("backend", BACKENDS, indirect=True)``: the test runs on the
embedded store and on a real kube-apiserver (with the node agent and the scheduler)."""


def shell_stage(name: str, script: str, **spec: object) -> dict:
    """A pod stage running ``sh -c script`` on the host runtime."""
    return {
        "apiVersion": API,
        "kind": "Stage",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "pod": {"spec": {"containers": [
                {"name": "main", "image": "busybox", "command": ["sh", "-c", script]}
            ]}},
            **spec,
        },
    }


def delegation_stage(name: str, url: str, timeout: str | None = None) -> dict:
    """A stage handed to the outside system at ``url`` (approval), with an optional
    ``timeout``."""
    delegation = {"type": "approval", "url": url}
    if timeout:
        delegation["timeout"] = timeout
    return {
        "apiVersion": API, "kind": "Stage",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"delegation": delegation},
    }


def workflow(name: str, stages: list[dict], **spec: object) -> dict:
    """A workflow of ``[{name, depends?, trivial?}]``."""
    return {
        "apiVersion": API,
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"stages": stages, **spec},
    }


def workflow_run(name: str, workflow_name: str, **spec: object) -> dict:
    return {
        "apiVersion": API,
        "kind": "WorkflowRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"workflowRef": {"name": workflow_name}, **spec},
    }


def overall(run: dict) -> dict:
    return (run.get("status") or {}).get("overall") or {}


def stage_status(run: dict, stage: str) -> dict:
    return (((run.get("status") or {}).get("stages") or {}).get(stage) or {}).get("status") or {}


def outputs(run: dict, stage: str) -> dict[str, str]:
    entry = ((run.get("status") or {}).get("stages") or {}).get(stage) or {}
    return {o["key"]: o.get("value") for o in entry.get("outputs") or []}


async def allow_local_addresses(cluster: Cluster, namespace: str = NAMESPACE) -> None:
    """What an admin's `allowLocalAddresses: true` writes on the tenant: its receivers,
    delegation URLs and SCM servers may then be on 127.0.0.1, as the tests' fakes are."""
    await cluster.patch(kinds.NAMESPACE, namespace, {"metadata": {"annotations": {
        keys.ANNOTATION_TENANT_INFO: json.dumps({"allowLocalAddresses": True})}}})


async def quota_of_pods(cluster: Cluster, pods: int) -> None:
    """The tenant's ResourceQuota allows `pods` pods, once its status says so (the
    apiserver refuses pods while a quota's status is unknown)."""
    body = {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "pods", "namespace": NAMESPACE},
            "spec": {"hard": {"pods": str(pods)}}}
    try:
        current = await cluster.get(kinds.RESOURCE_QUOTA, "pods", NAMESPACE)
    except NotFound:
        await cluster.create(body, namespace=NAMESPACE)
    else:
        current["spec"] = body["spec"]
        await cluster.replace(current)

    async def in_force() -> bool:
        status = (await cluster.get(kinds.RESOURCE_QUOTA, "pods", NAMESPACE)).get("status") or {}
        return (status.get("hard") or {}).get("pods") == str(pods) and "used" in status

    await eventually(in_force, timeout=30)


async def prepare_tenant(cluster: EmbeddedCluster) -> None:
    """The default tenant namespace and its PVC."""
    for obj in (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": PVC, "namespace": NAMESPACE},
            "spec": {"accessModes": ["ReadWriteMany"],
                     "resources": {"requests": {"storage": "1Gi"}}},
        },
    ):
        with contextlib.suppress(AlreadyExists):
            await cluster.create(obj)


@dataclass
class Env:
    cluster: Cluster
    engine: Engine | None
    data_dir: Path
    backend: str = "embedded"

    async def apply(self, *objs: dict) -> None:
        for obj in objs:
            await self.cluster.create(obj)

    async def run(self, name: str) -> dict:
        return await self.cluster.get(kinds.WORKFLOW_RUN, name, NAMESPACE)

    async def wait_run(
        self, name: str, predicate: Callable[[dict], bool], within: float = 20.0
    ) -> dict:
        """Poll the run until ``predicate`` holds; fail with its last state otherwise."""
        deadline = time.monotonic() + within
        run: dict = {}
        while time.monotonic() < deadline:
            run = await self.run(name)
            if predicate(run):
                return run
            await asyncio.sleep(0.05)
        raise AssertionError(f"run {name} did not reach the expected state: {run.get('status')}")

    async def wait_phase(self, name: str, *phases: str, within: float = 20.0) -> dict:
        """Wait for one of ``phases``; a run ending in another phase fails at once."""
        terminal = {"Succeeded", "Failed", "Cancelled"}
        run = await self.wait_run(
            name, lambda r: overall(r).get("phase") in {*phases, *terminal}, within
        )
        assert overall(run).get("phase") in phases, run.get("status")
        return run

    async def pods(self, selector: str | None = None) -> list[dict]:
        return (await self.cluster.list(kinds.POD, NAMESPACE, label_selector=selector)).items

    async def looked_at(self, name: str, within: float = 20.0) -> dict:
        """The run as stored once the run controller has reconciled it as stored: its cache
        has caught up with the cluster, then a reconcile begun after that has finished.
        What a test finds afterwards is what the controller decided, not a reconcile that
        has yet to happen."""
        assert self.engine is not None, "no engine runs in this environment"
        deadline = time.monotonic() + within
        while True:
            run = await self.run(name)
            cached = self.engine.caches.runs.get(NAMESPACE, name)
            version = run["metadata"]["resourceVersion"]
            if cached is not None and cached["metadata"]["resourceVersion"] == version:
                break
            assert time.monotonic() < deadline, f"the engine's cache never showed run {name}"
            await asyncio.sleep(0.01)
        await self.engine.run_controller.requeue_and_wait(f"{NAMESPACE}/{name}")
        return await self.run(name)


@contextlib.asynccontextmanager
async def running_env(
    data_dir: Path,
    config: EngineConfig | None = None,
    *,
    with_engine: bool = True,
    backend: str = "embedded",
    clock: Clock = SYSTEM_CLOCK,
    engine_sees: Callable[[Cluster], Cluster] | None = None,
) -> AsyncIterator[Env]:
    """Cluster + node agent (+ engine) running in the background of the test; the engine
    keeps time by `clock` (a `ManualClock` makes its delays wait for `clock.advance`) and
    reaches the cluster through `engine_sees(cluster)` when given (e.g. a recorder of what
    it asks for)."""
    config = config or EngineConfig(gc_enabled=False, watch_pod_events=False)
    if clock is not SYSTEM_CLOCK and "pod_pending_timeout_seconds" not in config.model_fields_set:
        # A manual clock jumps over minutes while real pods take real time to start.
        config = config.model_copy(update={"pod_pending_timeout_seconds": 0})
    if clock is not SYSTEM_CLOCK and "progress_write_delay_seconds" not in config.model_fields_set:
        # Held progress is written when a delay on `clock` has passed: the test would have
        # to advance the clock before it could see a stage start.
        config = config.model_copy(update={"progress_write_delay_seconds": 0})
    runtime = HostRuntime(image_overlays=resolver_image_overlays())
    if backend == "kube":
        from support.kube_engine import engine_test_cluster, remove_node

        from cyclone.node.provisioner import LocalPathProvisioner

        node = f"engine-{secrets.token_hex(3)}"
        async with engine_test_cluster(NAMESPACE, PVC) as cluster:
            agent = NodeAgent(cluster, node_name=node, data_dir=data_dir / "node",
                              runtime=runtime, heartbeat_seconds=2)
            provisioner = LocalPathProvisioner(cluster, data_dir / "node", node_name=node)
            try:
                async with _running(cluster, config, with_engine, data_dir, backend, clock,
                                    agent, provisioner.run(), engine_sees=engine_sees) as env:
                    yield env
            finally:
                await remove_node(cluster, node)
        return
    cluster = EmbeddedCluster(data_dir / "cluster.db")
    await cluster.start()
    await prepare_tenant(cluster)
    agent = NodeAgent(cluster, node_name="test-node", data_dir=data_dir / "node",
                      runtime=runtime, schedule_unbound=True, heartbeat_seconds=30)
    try:
        async with _running(cluster, config, with_engine, data_dir, backend, clock,
                            agent, engine_sees=engine_sees) as env:
            yield env
    finally:
        await cluster.close()


@contextlib.asynccontextmanager
async def _running(
    cluster: Cluster,
    config: EngineConfig,
    with_engine: bool,
    data_dir: Path,
    backend: str,
    clock: Clock,
    agent: NodeAgent,
    *extra: Coroutine[Any, Any, None],
    engine_sees: Callable[[Cluster], Cluster] | None = None,
) -> AsyncIterator[Env]:
    seen = engine_sees(cluster) if engine_sees else cluster
    engine = Engine(seen, config, clock=clock) if with_engine else None
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(agent.run()), *(group.create_task(c) for c in extra)]
        await asyncio.wait_for(agent.registered.wait(), 30)
        if engine is not None:
            tasks.append(group.create_task(engine.run()))
            await asyncio.wait_for(engine.ready.wait(), 30)
        try:
            yield Env(cluster, engine, data_dir, backend)
        finally:
            for task in tasks:
                task.cancel()
