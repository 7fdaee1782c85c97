"""The real-cluster side of the engine tests: a control plane of their own with Cyclone's
CRDs installed, and per test a clean tenant namespace, a node agent and the local-path
provisioner, so the same test bodies run on the embedded store and on a kube-apiserver."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from cyclone.devcluster import ControlPlane
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, NotFound
from cyclone.kube.protocol import Cluster
from cyclone.kube.remote import RemoteCluster
from cyclone.node.agent import NodeAgent
from cyclone.node.provisioner import LocalPathProvisioner
from cyclone.node.runtimes import Runtime
from support.clusters import eventually
from support.control_plane import start_plane, stop_plane

CRD_FILE = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "cyclone-crds.yaml"
NAMESPACED_KINDS = (
    kinds.WORKFLOW_RUN, kinds.WORKFLOW_RUN_STAGES, kinds.WORKFLOW_TRIGGER, kinds.WORKFLOW,
    kinds.STAGE, kinds.RESOURCE, kinds.PROJECT, kinds.RESOURCE_QUOTA, kinds.SECRET,
    kinds.CONFIG_MAP,
)

_plane: ControlPlane | None = None
_crds_installed: set[str] = set()


def engine_plane() -> ControlPlane:
    """The plane the engine tests share, started on first use and stopped at exit."""
    global _plane
    if _plane is None:
        _plane = start_plane("cyclone-engine")
        atexit.register(_stop)
    return _plane


def _stop() -> None:
    global _plane
    if _plane is not None:
        stop_plane(_plane)
        _plane = None


async def install_crds(cluster: RemoteCluster) -> None:
    """Cyclone's CRDs applied to the cluster and established (once per API server)."""
    if cluster.server in _crds_installed:
        return
    documents = [doc for doc in yaml.safe_load_all(CRD_FILE.read_text()) if doc]
    for crd in documents:
        with contextlib.suppress(AlreadyExists):
            await cluster.create(copy.deepcopy(crd))

    async def established() -> bool:
        for crd in documents:
            got = await cluster.get(kinds.CUSTOM_RESOURCE_DEFINITION, crd["metadata"]["name"])
            conditions = (got.get("status") or {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True"
                       for c in conditions):
                return False
        return True

    await eventually(established, timeout=30)
    _crds_installed.add(cluster.server)


async def _delete_all(cluster: Cluster, kind: kinds.Kind, namespace: str | None) -> None:
    for obj in (await cluster.list(kind, namespace)).items:
        name = obj["metadata"]["name"]
        with contextlib.suppress(NotFound):
            if obj["metadata"].get("finalizers"):
                await cluster.patch(kind, name, {"metadata": {"finalizers": None}}, namespace)
            await cluster.delete(kind, name, namespace, grace_period_seconds=0)


async def clean_namespace(cluster: Cluster, namespace: str, pvc: str) -> None:
    """An existing namespace emptied of what earlier tests left, with a fresh tenant PVC
    (and its old volume gone, so the next provisioner binds it to its own directory)."""
    try:
        await cluster.get(kinds.NAMESPACE, namespace)
    except NotFound:
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": namespace}})
    await eventually(lambda: cluster.get(kinds.SERVICE_ACCOUNT, "default", namespace),
                     timeout=30)
    for kind in NAMESPACED_KINDS:
        await _delete_all(cluster, kind, namespace)
    await _delete_all(cluster, kinds.POD, namespace)
    await _delete_all(cluster, kinds.PERSISTENT_VOLUME_CLAIM, namespace)
    await _delete_all(cluster, kinds.PERSISTENT_VOLUME, None)
    await _delete_all(cluster, kinds.EXECUTION_CLUSTER, None)

    async def emptied() -> bool:
        for kind in (kinds.POD, kinds.PERSISTENT_VOLUME_CLAIM, kinds.WORKFLOW_RUN):
            if (await cluster.list(kind, namespace)).items:
                return False
        return not (await cluster.list(kinds.PERSISTENT_VOLUME)).items

    await eventually(emptied, timeout=30)
    await cluster.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": pvc, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    })


@contextlib.asynccontextmanager
async def engine_test_cluster(namespace: str, pvc: str) -> AsyncIterator[RemoteCluster]:
    """A RemoteCluster on the engine plane with the CRDs and a clean `namespace`."""
    cluster = RemoteCluster.from_kubeconfig(engine_plane().kubeconfig)
    try:
        await install_crds(cluster)
        await clean_namespace(cluster, namespace, pvc)
        yield cluster
    finally:
        await cluster.close()


async def remove_node(cluster: Cluster, name: str) -> None:
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.NODE, name)


@contextlib.asynccontextmanager
async def running_node(cluster: Cluster, name: str, data_dir: Path, runtime: Runtime,
                       **agent_options: Any) -> AsyncIterator[None]:
    """A node agent registered as Node `name`, and the local-path provisioner for its
    claims, until the block ends (then the Node is deleted)."""
    agent = NodeAgent(cluster, node_name=name, data_dir=data_dir, runtime=runtime,
                      heartbeat_seconds=2, **agent_options)
    provisioner = LocalPathProvisioner(cluster, data_dir, node_name=name)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(agent.run()), group.create_task(provisioner.run())]
            try:
                await asyncio.wait_for(agent.registered.wait(), 30)
                yield
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        await remove_node(cluster, name)
