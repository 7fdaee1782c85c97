"""Finalizers, graceful pod deletion, pod binding and ownerReference cascade."""

from __future__ import annotations

import asyncio

import pytest
from support.clusters import eventually

from cyclone.kube import kinds
from cyclone.kube.errors import Conflict, Invalid, NotFound
from cyclone.kube.protocol import Cluster

from .manifests import config_map, node, pod

FINALIZER = "contract.cyclone.dev/hold"


async def _gone(cluster: Cluster, kind: kinds.Kind, name: str, namespace: str | None) -> bool:
    try:
        await cluster.get(kind, name, namespace)
    except NotFound:
        return True
    return False


async def test_delete_without_finalizers_removes_at_once(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(config_map(), namespace=namespace)
    assert await cluster.delete(kinds.CONFIG_MAP, created["metadata"]["name"], namespace) is None
    await eventually(lambda: _gone(cluster, kinds.CONFIG_MAP, created["metadata"]["name"],
                                   namespace))


async def test_finalizers_hold_a_deleted_object_until_removed(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(config_map(finalizers=[FINALIZER]), namespace=namespace)
    name = created["metadata"]["name"]
    start = created["metadata"]["resourceVersion"]
    lingering = await cluster.delete(kinds.CONFIG_MAP, name, namespace)
    assert lingering is not None and lingering["metadata"]["deletionTimestamp"]
    held = await cluster.get(kinds.CONFIG_MAP, name, namespace)
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == [FINALIZER]
    with pytest.raises(Invalid):
        await cluster.patch(kinds.CONFIG_MAP, name,
                            {"metadata": {"finalizers": [FINALIZER, "contract.cyclone.dev/new"]}},
                            namespace)
    await cluster.patch(kinds.CONFIG_MAP, name, {"metadata": {"finalizers": None}}, namespace)
    await eventually(lambda: _gone(cluster, kinds.CONFIG_MAP, name, namespace))
    types = []
    async with asyncio.timeout(15):
        async for event in cluster.watch(kinds.CONFIG_MAP, namespace, resource_version=start,
                                         field_selector=f"metadata.name={name}"):
            types.append(event.type)
            if event.type == "DELETED":
                break
    assert types == ["MODIFIED", "DELETED"]


@pytest.fixture
async def node_name(cluster: Cluster) -> str:
    created = await cluster.create(node())
    yield created["metadata"]["name"]
    await cluster.delete(kinds.NODE, created["metadata"]["name"])


async def test_bind_pod_sets_node_and_scheduled_condition(
    cluster: Cluster, namespace: str, node_name: str
) -> None:
    created = await cluster.create(pod(), namespace=namespace)
    name = created["metadata"]["name"]
    await cluster.bind_pod(name, namespace, node_name)
    bound = await cluster.get(kinds.POD, name, namespace)
    assert bound["spec"]["nodeName"] == node_name
    conditions = {c["type"]: c["status"] for c in bound["status"].get("conditions", [])}
    assert conditions.get("PodScheduled") == "True"
    with pytest.raises(Conflict):
        await cluster.bind_pod(name, namespace, node_name)


async def test_bound_running_pod_is_deleted_gracefully(
    cluster: Cluster, namespace: str, node_name: str
) -> None:
    created = await cluster.create(pod(grace=7), namespace=namespace)
    name = created["metadata"]["name"]
    await cluster.bind_pod(name, namespace, node_name)
    lingering = await cluster.delete(kinds.POD, name, namespace)
    assert lingering is not None
    held = await cluster.get(kinds.POD, name, namespace)
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["deletionGracePeriodSeconds"] == 7
    await cluster.delete(kinds.POD, name, namespace, grace_period_seconds=0)
    await eventually(lambda: _gone(cluster, kinds.POD, name, namespace))


async def test_graceful_period_defaults_to_thirty_seconds(
    cluster: Cluster, namespace: str, node_name: str
) -> None:
    created = await cluster.create(pod(), namespace=namespace)
    name = created["metadata"]["name"]
    await cluster.bind_pod(name, namespace, node_name)
    await cluster.delete(kinds.POD, name, namespace)
    held = await cluster.get(kinds.POD, name, namespace)
    assert held["metadata"]["deletionGracePeriodSeconds"] == 30
    await cluster.delete(kinds.POD, name, namespace, grace_period_seconds=0)


async def test_unbound_or_finished_pods_are_deleted_at_once(
    cluster: Cluster, namespace: str, node_name: str
) -> None:
    unbound = await cluster.create(pod(), namespace=namespace)
    finished = await cluster.create(pod(), namespace=namespace)
    await cluster.bind_pod(finished["metadata"]["name"], namespace, node_name)
    await cluster.patch(kinds.POD, finished["metadata"]["name"],
                        {"status": {"phase": "Succeeded"}}, namespace, subresource="status")
    for created in (unbound, finished):
        await cluster.delete(kinds.POD, created["metadata"]["name"], namespace)
        await eventually(lambda c=created: _gone(cluster, kinds.POD, c["metadata"]["name"],
                                                 namespace))


def _owned_by(owner: dict) -> dict:
    return {"ownerReferences": [{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
    }]}


async def test_dependents_are_deleted_with_their_owner(
    cluster: Cluster, namespace: str
) -> None:
    owner = await cluster.create(config_map(), namespace=namespace)
    child = await cluster.create(config_map(**_owned_by(owner)), namespace=namespace)
    grandchild = await cluster.create(config_map(**_owned_by(child)), namespace=namespace)
    bystander = await cluster.create(config_map(), namespace=namespace)
    await cluster.delete(kinds.CONFIG_MAP, owner["metadata"]["name"], namespace)
    for obj in (child, grandchild):
        await eventually(lambda o=obj: _gone(cluster, kinds.CONFIG_MAP, o["metadata"]["name"],
                                             namespace))
    await cluster.get(kinds.CONFIG_MAP, bystander["metadata"]["name"], namespace)


async def test_orphan_propagation_keeps_dependents(cluster: Cluster, namespace: str) -> None:
    owner = await cluster.create(config_map(), namespace=namespace)
    child = await cluster.create(config_map(**_owned_by(owner)), namespace=namespace)
    await cluster.delete(kinds.CONFIG_MAP, owner["metadata"]["name"], namespace,
                         propagation_policy="Orphan")
    await eventually(lambda: _gone(cluster, kinds.CONFIG_MAP, owner["metadata"]["name"],
                                   namespace))

    async def orphaned() -> bool:
        kept = await cluster.get(kinds.CONFIG_MAP, child["metadata"]["name"], namespace)
        return not kept["metadata"].get("ownerReferences")

    await eventually(orphaned)
