"""The node agent: the kubelet of a cluster that has none.

It registers a Node and keeps its heartbeat, watches the pods bound to the node (binding
unscheduled ones to itself when asked, as the embedded cluster has no scheduler), and runs
each pod through a `PodWorker`. It holds no state it cannot rebuild from the cluster and its
data directory.

A pod that has ended keeps its data (logs, volumes) until it is deleted, which may be long
after (a run's pods stay until the run goes), but not its worker: the agent remembers only
its name and containers (`EndedPod`), and starts a worker again for its deletion, the way
an agent that restarted meets ended pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, ApiError, Conflict, Gone, NotFound
from cyclone.kube.protocol import Cluster
from cyclone.kube.scheduling import awaits_default_scheduler
from cyclone.node.layout import NodeLayout
from cyclone.node.node_object import node_conditions, node_metadata, node_object, node_status
from cyclone.node.pod_worker import NodeContext, PodWorker, is_terminal
from cyclone.node.runtimes.base import ContainerLaunch, Runtime

log = logging.getLogger(__name__)
WATCH_TIMEOUT_SECONDS = 300
MAX_BACKOFF_SECONDS = 10.0
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40


@dataclass(frozen=True, slots=True)
class EndedPod:
    """What the agent keeps of a pod that ended, until the pod is deleted."""

    namespace: str
    name: str
    init_containers: tuple[str, ...]
    containers: tuple[str, ...]

    @classmethod
    def of(cls, pod: dict) -> EndedPod:
        spec = pod.get("spec") or {}
        return cls(
            pod["metadata"]["namespace"], pod["metadata"]["name"],
            tuple(c["name"] for c in spec.get("initContainers") or []),
            tuple(c["name"] for c in spec.get("containers") or []),
        )

    def pod(self, uid: str) -> dict:
        """A pod with what cleaning up after it reads (its containers, by name)."""
        return {
            "metadata": {"uid": uid, "name": self.name, "namespace": self.namespace},
            "spec": {"initContainers": [{"name": n} for n in self.init_containers],
                     "containers": [{"name": n} for n in self.containers]},
        }


class NodeAgent:
    def __init__(
        self,
        cluster: Cluster,
        *,
        node_name: str,
        data_dir: Path,
        runtime: Runtime,
        schedule_unbound: bool = False,
        heartbeat_seconds: float = 10,
        log_server_port: int | None = None,
        log_client_ca: Path | None = None,
        taints: list[dict] | None = None,
    ) -> None:
        """`log_server_port` (0: any free port) starts the log server the API server reads
        pod logs from; it requires `log_client_ca`, the CA whose client certificates
        (the API server's kubelet client certificate) it serves, and nobody else."""
        if log_server_port is not None and log_client_ca is None:
            raise ValueError(
                "the log server needs a client CA (log_client_ca): it serves raw pod logs "
                "and must only answer the API server"
            )
        self.cluster = cluster
        self.taints = list(taints or [])
        self.node_name = node_name
        self.layout = NodeLayout(Path(data_dir).resolve())
        self.runtime = runtime
        self.schedule_unbound = schedule_unbound
        self.heartbeat_seconds = heartbeat_seconds
        self.log_server_port = log_server_port
        self.log_client_ca = Path(log_client_ca) if log_client_ca is not None else None
        self.context = NodeContext(cluster, self.layout, runtime, node_name)
        self.workers: dict[str, PodWorker] = self.context.workers
        self.ended: dict[str, EndedPod] = {}
        """Pods of the node that ended (their end written) and are not deleted, by uid."""
        self._group: asyncio.TaskGroup | None = None
        self._ready_since = datetime.now(UTC)
        self.registered = asyncio.Event()

    async def run(self) -> None:
        """Serve the node until cancelled."""
        self.layout.prepare()
        context = self.context
        async with context.objects, context.statuses, asyncio.TaskGroup() as group:
            self._group = group
            if self.log_server_port is not None and self.log_client_ca is not None:
                from cyclone.node.log_server import serve_logs

                self.log_server_port = await serve_logs(
                    group, self.layout, self.log_server_port, self.container_active,
                    self.log_client_ca,
                )
            await self._register()
            group.create_task(self._heartbeat())
            group.create_task(self._watch_pods())
            if self.schedule_unbound:
                group.create_task(self._bind_unscheduled())

    def container_active(self, namespace: str, pod: str, container: str) -> bool:
        """Whether a container of a pod on this node has not exited yet."""
        for worker in self.workers.values():
            if (worker.namespace, worker.name) == (namespace, pod):
                return worker.container_active(container)
        return False

    async def _register(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._ensure_node()
                self.registered.set()
                return
            except ApiError as error:
                log.warning("node %s: registration failed: %s", self.node_name, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    async def _ensure_node(self) -> None:
        now = datetime.now(UTC)
        try:
            await self.cluster.get(kinds.NODE, self.node_name)
        except NotFound:
            node = node_object(
                self.node_name, self.layout.logs_dir, runtime_name=self.runtime.name, now=now,
                log_server_port=self.log_server_port,
            )
            if self.taints:
                node["spec"]["taints"] = self.taints
            with contextlib.suppress(AlreadyExists):
                await self.cluster.create(node)
        else:
            await self.cluster.patch(
                kinds.NODE, self.node_name,
                {"metadata": node_metadata(self.node_name, self.layout.logs_dir)},
            )
        status = node_status(
            runtime_name=self.runtime.name, now=now, ready_since=self._ready_since,
            log_server_port=self.log_server_port,
        )
        await self.cluster.patch(
            kinds.NODE, self.node_name, {"status": status}, subresource="status"
        )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            conditions = node_conditions(datetime.now(UTC), self._ready_since)
            try:
                await self.cluster.patch(
                    kinds.NODE, self.node_name, {"status": {"conditions": conditions}},
                    subresource="status",
                )
            except NotFound:
                await self._register()
            except ApiError as error:
                log.warning("node %s: heartbeat failed: %s", self.node_name, error)
            await self._renew_lease()

    async def _renew_lease(self) -> None:
        """Renew the node's Lease in `kube-node-lease`, where that namespace exists."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = {"holderIdentity": self.node_name, "renewTime": now,
                "leaseDurationSeconds": LEASE_DURATION_SECONDS}
        try:
            await self.cluster.patch(kinds.LEASE, self.node_name, {"spec": spec}, LEASE_NAMESPACE)
        except NotFound:
            lease = {"apiVersion": kinds.LEASE.api_version, "kind": "Lease",
                     "metadata": {"name": self.node_name, "namespace": LEASE_NAMESPACE},
                     "spec": spec}
            with contextlib.suppress(ApiError):
                await self.cluster.create(lease)
        except ApiError as error:
            log.debug("node %s: lease not renewed: %s", self.node_name, error)

    def _observe(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        if uid in self.ended:
            if is_terminal(pod) and not pod["metadata"].get("deletionTimestamp"):
                return
            del self.ended[uid]
        self._start_worker(PodWorker(self.context, pod))

    def _vanished(self, uid: str) -> None:
        """The pod is gone from the cluster: its worker stops and cleans up after it."""
        worker = self.workers.get(uid)
        if worker is None:
            ended = self.ended.pop(uid, None)
            if ended is None:
                return
            worker = PodWorker(self.context, ended.pod(uid))
            self._start_worker(worker)
        worker.vanish()

    def _start_worker(self, worker: PodWorker) -> None:
        uid = worker.uid
        assert self._group is not None
        run = self._run_worker(worker)
        try:
            self._group.create_task(run, name=f"pod-{uid}")
        except RuntimeError:
            run.close()
            raise asyncio.CancelledError from None
        self.workers[uid] = worker

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            if await worker.run():
                self.ended[worker.uid] = EndedPod.of(worker.pod)
        except Exception:
            log.exception("pod %s/%s: worker failed", worker.namespace, worker.name)
        finally:
            self.workers.pop(worker.uid, None)
            self.context.statuses.forget(worker)
            self.context.objects.release(worker.uid)

    async def _watch_pods(self) -> None:
        selector = f"spec.nodeName={self.node_name}"
        first_list = True
        delay = 0.2
        while True:
            try:
                listed = await self.cluster.list(kinds.POD, field_selector=selector)
                present = {pod["metadata"]["uid"] for pod in listed.items}
                for uid in [uid for uid in [*self.workers, *self.ended] if uid not in present]:
                    self._vanished(uid)
                for pod in listed.items:
                    self._observe(pod)
                if first_list:
                    await self._stop_orphans(present)
                    first_list = False
                version = listed.resource_version
                while True:
                    async for event in self.cluster.watch(
                        kinds.POD, field_selector=selector, resource_version=version,
                        timeout_seconds=WATCH_TIMEOUT_SECONDS,
                    ):
                        version = event.object["metadata"].get("resourceVersion", version)
                        delay = 0.2
                        if event.type == "DELETED":
                            self._vanished(event.object["metadata"]["uid"])
                        elif event.type in ("ADDED", "MODIFIED"):
                            self._observe(event.object)
            except Gone:
                continue
            except (ApiError, OSError) as error:
                log.warning("node %s: pod watch failed: %s", self.node_name, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    async def _stop_orphans(self, present: set[str]) -> None:
        """Kill what still runs for pods this node no longer has, and remove their data."""
        pods_dir = self.layout.data_dir / "pods"
        if not pods_dir.is_dir():
            return
        for pod_dir in pods_dir.iterdir():
            if pod_dir.name in present or pod_dir.name in self.workers:
                continue
            containers = pod_dir / "containers"
            for state_dir in containers.iterdir() if containers.is_dir() else ():
                launch = ContainerLaunch(
                    pod_dir.name, "", "", state_dir.name, "", [], [], {}, None, [], state_dir,
                    state_dir / "orphan.log",
                )
                await self.runtime.stop(launch, 0.0)
            await asyncio.to_thread(shutil.rmtree, pod_dir, True)

    async def _bind_unscheduled(self) -> None:
        selector = "spec.nodeName="
        delay = 0.2
        while True:
            try:
                async for event in self.cluster.watch(
                    kinds.POD, field_selector=selector, timeout_seconds=WATCH_TIMEOUT_SECONDS
                ):
                    delay = 0.2
                    pod = event.object
                    if event.type in ("ADDED", "MODIFIED") and awaits_default_scheduler(pod):
                        await self._bind(pod)
            except (ApiError, OSError) as error:
                log.warning("node %s: unscheduled pod watch failed: %s", self.node_name, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    async def _bind(self, pod: dict) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(Conflict, NotFound):
            await self.cluster.bind_pod(meta["name"], meta["namespace"], self.node_name)


async def run_node_agent(
    cluster: Cluster,
    *,
    node_name: str,
    data_dir: Path,
    runtime: Runtime,
    schedule_unbound: bool = False,
    heartbeat_seconds: float = 10,
    log_server_port: int | None = None,
    log_client_ca: Path | None = None,
) -> None:
    """Run a node agent until cancelled."""
    agent = NodeAgent(
        cluster, node_name=node_name, data_dir=data_dir, runtime=runtime,
        schedule_unbound=schedule_unbound, heartbeat_seconds=heartbeat_seconds,
        log_server_port=log_server_port, log_client_ca=log_client_ca,
    )
    await agent.run()
