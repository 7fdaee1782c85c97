"""The systems under test: engine + node agent (fake runtime) on an embedded cluster or on a
real kube-apiserver, each side's calls to its Cluster counted, and an observer that
timestamps what happens to runs and pods through its own watches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import NAMESPACE, overall_phase
from counting import CountingCluster

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.manager import CYCLONE_POD_SELECTOR, Engine
from cyclone.kube import kinds
from cyclone.kube.informer import Informer
from cyclone.node.agent import NodeAgent
from cyclone.node.runtimes.fake import FakeRuntime
from cyclone.up import ensure_default_tenant

TERMINAL = ("Succeeded", "Failed", "Cancelled")


@dataclass
class Stack:
    """What a benchmark drives: `admin` to create objects (not counted), the engine."""

    name: str
    admin: Any
    engine: Engine
    engine_calls: CountingCluster
    agent_calls: CountingCluster


@dataclass
class Observer:
    """Timestamps (time.perf_counter) of first sightings, through the admin's watches."""

    pod_added: dict[tuple[str, str], float] = field(default_factory=dict)
    pod_succeeded: dict[tuple[str, str], float] = field(default_factory=dict)
    run_done: dict[str, float] = field(default_factory=dict)
    run_phase: dict[str, str] = field(default_factory=dict)
    run_reason: dict[str, str] = field(default_factory=dict)
    _waiting: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    def on_pod(self, event_type: str, pod: dict, _old: dict | None) -> None:
        if event_type == "DELETED":
            return
        labels = pod["metadata"].get("labels") or {}
        key = (labels.get(keys.LABEL_WORKFLOWRUN, ""), labels.get(keys.LABEL_STAGE, ""))
        now = time.perf_counter()
        self.pod_added.setdefault(key, now)
        if (pod.get("status") or {}).get("phase") == "Succeeded":
            self.pod_succeeded.setdefault(key, now)

    def on_run(self, event_type: str, run: dict, _old: dict | None) -> None:
        phase = overall_phase(run)
        name = run["metadata"]["name"]
        if phase in TERMINAL and name not in self.run_done:
            self.run_done[name] = time.perf_counter()
            self.run_phase[name] = phase or ""
            overall = (run.get("status") or {}).get("overall") or {}
            self.run_reason[name] = f"{overall.get('reason')}: {overall.get('message')}"
            for target, event in self._waiting:
                if len(self.run_done) >= target:
                    event.set()

    async def wait_done(self, count: int, seconds: float) -> None:
        event = asyncio.Event()
        self._waiting.append((count, event))
        if len(self.run_done) >= count:
            event.set()
        async with asyncio.timeout(seconds):
            await event.wait()


@contextlib.asynccontextmanager
async def observed(stack: Stack) -> AsyncIterator[Observer]:
    observer = Observer()
    pods = Informer(stack.admin, kinds.POD, NAMESPACE, label_selector=CYCLONE_POD_SELECTOR)
    runs = Informer(stack.admin, kinds.WORKFLOW_RUN, NAMESPACE)
    pods.add_handler(observer.on_pod)
    runs.add_handler(observer.on_run)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(pods.run()), group.create_task(runs.run())]
        await pods.wait_synced()
        await runs.wait_synced()
        try:
            yield observer
        finally:
            for task in tasks:
                task.cancel()


def engine_config() -> EngineConfig:
    """Defaults, without GC (it would add pods of its own to the figures), without a
    run history limit (the throughput runs must all stay to be counted), and without a
    limit on how long a pod may wait to start: in a burst of 10,000 runs the one node
    agent starts the last pods long after the engine made them, which is the backlog
    the benchmark measures, not a pod that cannot start."""
    return EngineConfig(gc_enabled=False, max_workflowruns=0, pod_pending_timeout_seconds=0)


@contextlib.asynccontextmanager
async def _running(stack: Stack, agent: NodeAgent, *extra: Any) -> AsyncIterator[Stack]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(agent.run()), group.create_task(stack.engine.run())]
        tasks += [group.create_task(part.run()) for part in extra]
        await asyncio.wait_for(agent.registered.wait(), 60)
        await asyncio.wait_for(stack.engine.ready.wait(), 60)
        try:
            yield stack
        finally:
            for task in tasks:
                task.cancel()


@contextlib.asynccontextmanager
async def embedded_stack(workdir: Path) -> AsyncIterator[Stack]:
    """`cyclone up`'s composition with the fake runtime, calls counted per side."""
    from cyclone.kube.embedded import EmbeddedCluster

    cluster = EmbeddedCluster(workdir / "cluster.db", name=keys.CONTROL_CLUSTER_NAME)
    await cluster.start()
    try:
        await ensure_default_tenant(cluster)
        engine_calls, agent_calls = CountingCluster(cluster), CountingCluster(cluster)
        agent = NodeAgent(agent_calls, node_name="bench", data_dir=workdir / "node",
                          runtime=FakeRuntime(), schedule_unbound=True)
        stack = Stack("embedded", cluster, Engine(engine_calls, engine_config()),
                      engine_calls, agent_calls)
        async with _running(stack, agent):
            yield stack
    finally:
        await cluster.close()


def kube_available() -> bool:
    from cyclone.devcluster import missing_binaries

    return not missing_binaries()


@contextlib.asynccontextmanager
async def kube_plane(workdir: Path) -> AsyncIterator[Any]:
    """A real control plane (etcd, kube-apiserver, controller-manager, scheduler) with
    Cyclone's CRDs established and the default tenant's namespace ready."""
    from cyclone.devcluster import start_control_plane

    plane = await asyncio.to_thread(start_control_plane, workdir / "plane", name="bench")
    try:
        yield plane
    finally:
        await asyncio.to_thread(plane.stop)


async def _install(plane: Any) -> None:
    from cyclone.api.crds import render_crds
    from cyclone.kube.errors import AlreadyExists, NotFound
    from cyclone.kube.remote import RemoteCluster

    admin = RemoteCluster.from_kubeconfig(plane.kubeconfig, qps=0)
    try:
        crds = render_crds()
        for crd in crds:
            with contextlib.suppress(AlreadyExists):
                await admin.create(crd)
        deadline = time.monotonic() + 60
        for crd in crds:
            while True:
                got = await admin.get(kinds.CUSTOM_RESOURCE_DEFINITION, crd["metadata"]["name"])
                conditions = (got.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True"
                       for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"CRD {crd['metadata']['name']} not established")
                await asyncio.sleep(0.1)
        await ensure_default_tenant(admin, home_pvc=True)
        while True:
            try:
                await admin.get(kinds.SERVICE_ACCOUNT, "default", NAMESPACE)
                break
            except NotFound:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def kube_stack(plane: Any, workdir: Path, *, qps: float | None = None,
                     burst: int | None = None) -> AsyncIterator[Stack]:
    """Engine and node agent (fake runtime) on a real apiserver, each with its own client
    and its own default client-side rate limit (unless `qps`/`burst` say otherwise); the
    local-path provisioner binds the tenant's claim; the kube-scheduler binds the pods."""
    from cyclone.kube.remote import RemoteCluster
    from cyclone.node.provisioner import LocalPathProvisioner

    await _install(plane)
    limits = {k: v for k, v in (("qps", qps), ("burst", burst)) if v is not None}
    admin = RemoteCluster.from_kubeconfig(plane.kubeconfig, qps=0)
    engine_client = RemoteCluster.from_kubeconfig(plane.kubeconfig, **limits)
    agent_client = RemoteCluster.from_kubeconfig(plane.kubeconfig)
    try:
        engine_calls, agent_calls = CountingCluster(engine_client), CountingCluster(agent_client)
        data_dir = workdir / "node"
        agent = NodeAgent(agent_calls, node_name="bench-node", data_dir=data_dir,
                          runtime=FakeRuntime(), heartbeat_seconds=5)
        provisioner = LocalPathProvisioner(agent_client, data_dir, node_name="bench-node")
        stack = Stack("kube-apiserver", admin, Engine(engine_calls, engine_config()),
                      engine_calls, agent_calls)
        async with _running(stack, agent, provisioner):
            yield stack
    finally:
        for client in (admin, engine_client, agent_client):
            with contextlib.suppress(Exception):
                await client.close()


def quiet_logs() -> None:
    logging.basicConfig(level=logging.ERROR)
