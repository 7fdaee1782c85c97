"""A small in-memory cluster with pods, secrets and container logs, for collector tests."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import AsyncIterator

from cyclone.api import keys
from cyclone.engine.core.tenancy import OPENED_PREFIX
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import ObjectList, WatchEvent


def stage_pod(name: str = "wf-build-abc", *, namespace: str = "cyclone-devops-worker",
              tenant_ns: str = "cyclone-devops", containers: tuple[str, ...] = ("main",),
              init_containers: tuple[str, ...] = (), env: list | None = None,
              volumes: list | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": "1",
            "labels": {
                keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
                keys.LABEL_POD_KIND: keys.POD_KIND_WORKLOAD,
                keys.LABEL_PROJECT: "proj",
                keys.LABEL_WORKFLOW: "wf",
                keys.LABEL_WORKFLOWRUN: "wf-run1",
                keys.LABEL_STAGE: "build",
            },
            "annotations": {keys.ANNOTATION_META_NAMESPACE: tenant_ns},
        },
        "spec": {
            "initContainers": [{"name": c, "image": "x"} for c in init_containers],
            "containers": [{"name": c, "image": "x", "env": env or []} for c in containers],
            "volumes": volumes or [],
        },
        "status": {"phase": "Pending"},
    }


def set_running(pod: dict) -> None:
    spec = pod["spec"]
    pod["status"] = {
        "phase": "Running",
        "initContainerStatuses": [
            {"name": c["name"], "state": {"terminated": {"exitCode": 0}}}
            for c in spec.get("initContainers") or []
        ],
        "containerStatuses": [
            {"name": c["name"], "state": {"running": {}}} for c in spec["containers"]
        ],
    }


def set_succeeded(pod: dict) -> None:
    spec = pod["spec"]
    pod["status"] = {
        "phase": "Succeeded",
        "containerStatuses": [
            {"name": c["name"], "state": {"terminated": {"exitCode": 0}}}
            for c in spec["containers"]
        ],
    }


class FakeLogCluster:
    """Pods, Secrets and growing container logs; `pod_logs` follows until `end_logs`."""

    name = "fake"

    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], dict] = {}
        self.secrets: dict[tuple[str, str], dict] = {}
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.logs: dict[tuple[str, str, str], bytearray] = {}
        self.ended: set[tuple[str, str, str]] = set()
        self.log_reads: list[tuple[str, int]] = []
        self.open_log_streams = 0
        self.delivered: dict[tuple[str, str, str], int] = {}
        self._changed = asyncio.Event()
        self._watchers: list[asyncio.Queue[WatchEvent]] = []
        self._rv = 1

    @property
    def watching(self) -> bool:
        """Whether any watch of this cluster is open."""
        return bool(self._watchers)

    def _bump(self, obj: dict) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _broadcast(self, event_type: str, pod: dict) -> None:
        for queue in self._watchers:
            queue.put_nowait(WatchEvent(event_type, pod))  # type: ignore[arg-type]

    def put_pod(self, pod: dict) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        event_type = "MODIFIED" if key in self.pods else "ADDED"
        self._bump(pod)
        self.pods[key] = pod
        self._broadcast(event_type, pod)

    def delete_pod(self, namespace: str, name: str) -> None:
        pod = self.pods.pop((namespace, name))
        self._broadcast("DELETED", pod)
        self._wake()

    def put_secret(self, namespace: str, name: str, data: dict[str, str],
                   labels: dict[str, str] | None = None) -> None:
        self.secrets[(namespace, name)] = {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }

    def put_object(self, kind: str, namespace: str, name: str, spec: dict) -> None:
        self.objects[(kind, namespace, name)] = {
            "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}

    def open_control_cluster(self, tenant: str, namespace: str) -> None:
        """Record, as the server's opencluster does, that `tenant` runs in `namespace`."""
        name = keys.CONTROL_CLUSTER_NAME
        self.objects[("ExecutionCluster", None, name)] = {
            "kind": "ExecutionCluster", "metadata": {"name": name, "annotations": {
                f"{OPENED_PREFIX}{tenant}": json.dumps([{
                    "integration": "cluster", "namespace": namespace,
                    "pvc": keys.tenant_pvc_name(tenant)}])}}}

    def write_log(self, namespace: str, pod: str, container: str, data: bytes) -> None:
        self.logs.setdefault((namespace, pod, container), bytearray()).extend(data)
        self._wake()

    def end_logs(self, namespace: str, pod: str, container: str) -> None:
        self.ended.add((namespace, pod, container))
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def get(self, kind, name, namespace=None):
        if kind is kinds.POD:
            found = self.pods.get((namespace, name))
        elif kind is kinds.SECRET:
            found = self.secrets.get((namespace, name))
        else:
            found = self.objects.get((kind.kind, namespace, name))
        if found is None:
            raise errors.NotFound(f"{kind.kind} {name} not found")
        return found

    async def patch(self, kind, name, patch, namespace=None, **_options):
        """Merge-patches a pod's annotations (all the collector writes)."""
        assert kind is kinds.POD
        pod = self.pods.get((namespace, name))
        if pod is None:
            raise errors.NotFound(f"pod {name} not found")
        pod = copy.deepcopy(pod)
        annotations = pod["metadata"].setdefault("annotations", {})
        annotations.update((patch.get("metadata") or {}).get("annotations") or {})
        self.put_pod(pod)
        return pod

    async def list(self, kind, namespace=None, *, label_selector=None,
                   field_selector=None):
        terms = [p.split("=", 1) for p in (label_selector or "").split(",") if p]
        source = self.pods if kind is kinds.POD else self.secrets
        items = [
            obj for (ns, _), obj in source.items()
            if (namespace is None or ns == namespace) and all(
                (term[0] in obj["metadata"]["labels"]) if len(term) == 1
                else obj["metadata"]["labels"].get(term[0]) == term[1] for term in terms)
        ]
        return ObjectList(items=items, resource_version=str(self._rv))

    async def watch(self, kind, namespace=None, *, label_selector=None,
                    field_selector=None, resource_version=None, timeout_seconds=None):
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self._watchers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.remove(queue)

    async def pod_logs(self, name: str, namespace: str, *, container: str | None = None,
                       follow: bool = False, since_bytes: int = 0) -> AsyncIterator[bytes]:
        key = (namespace, name, container or "")
        if (namespace, name) not in self.pods:
            raise errors.NotFound(f"pod {name} not found")
        self.log_reads.append((container or "", since_bytes))
        offset = since_bytes
        self.open_log_streams += 1
        try:
            while True:
                data = bytes(self.logs.get(key, b""))
                if offset < len(data):
                    chunk = data[offset:]
                    offset = len(data)
                    self.delivered[key] = offset
                    yield chunk
                    continue
                if not follow or key in self.ended or (namespace, name) not in self.pods:
                    return
                await self._changed.wait()
        finally:
            self.open_log_streams -= 1


async def eventually(predicate, within: float = 30.0) -> None:
    """Wait until `predicate()` holds, checking often; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
