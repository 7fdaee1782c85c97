"""Namespace lifecycle: Active, missing, Terminating, and removal once empty."""

from __future__ import annotations

import pytest
from support.clusters import eventually

from cyclone.kube import kinds
from cyclone.kube.errors import Forbidden, NotFound
from cyclone.kube.protocol import Cluster

from .manifests import config_map, unique

FINALIZER = "contract.cyclone.dev/hold"


async def test_default_namespace_exists(cluster: Cluster) -> None:
    default = await cluster.get(kinds.NAMESPACE, "default")
    assert default["status"]["phase"] == "Active"


async def test_new_namespace_is_active(cluster: Cluster, namespace: str) -> None:
    created = await cluster.get(kinds.NAMESPACE, namespace)
    assert created["status"]["phase"] == "Active"


async def test_create_in_missing_namespace_is_not_found(cluster: Cluster) -> None:
    missing = unique("ct-missing")
    with pytest.raises(NotFound) as caught:
        await cluster.create(config_map(), namespace=missing)
    assert f'namespaces "{missing}" not found' in caught.value.message


async def test_deleting_a_namespace_terminates_then_removes_it(cluster: Cluster) -> None:
    name = unique("ct-term")
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    held = await cluster.create(config_map(finalizers=[FINALIZER]), namespace=name)
    plain = await cluster.create(config_map(), namespace=name)
    await cluster.delete(kinds.NAMESPACE, name)
    terminating = await cluster.get(kinds.NAMESPACE, name)
    assert terminating["status"]["phase"] == "Terminating"
    assert terminating["metadata"]["deletionTimestamp"]

    with pytest.raises(Forbidden) as caught:
        await cluster.create(config_map(), namespace=name)
    assert (f"unable to create new content in namespace {name} because it is being terminated"
            in caught.value.message)

    async def plain_gone() -> bool:
        try:
            await cluster.get(kinds.CONFIG_MAP, plain["metadata"]["name"], name)
        except NotFound:
            return True
        return False

    await eventually(plain_gone, timeout=30)

    async def held_deleting() -> bool:
        obj = await cluster.get(kinds.CONFIG_MAP, held["metadata"]["name"], name)
        return bool(obj["metadata"].get("deletionTimestamp"))

    await eventually(held_deleting, timeout=30)
    assert (await cluster.get(kinds.NAMESPACE, name))["status"]["phase"] == "Terminating"
    await cluster.patch(kinds.CONFIG_MAP, held["metadata"]["name"],
                        {"metadata": {"finalizers": None}}, name)

    async def namespace_gone() -> bool:
        try:
            await cluster.get(kinds.NAMESPACE, name)
        except NotFound:
            return True
        return False

    await eventually(namespace_gone, timeout=60)
