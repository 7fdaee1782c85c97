"""Create, read, replace and optimistic concurrency, as a Kubernetes API server does them."""

from __future__ import annotations

import re

import pytest

from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, Conflict, Invalid, NotFound
from cyclone.kube.protocol import Cluster

from .manifests import config_map, unique

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def test_create_fills_system_metadata(cluster: Cluster, namespace: str) -> None:
    created = await cluster.create(config_map(data={"a": "1"}), namespace=namespace)
    meta = created["metadata"]
    assert meta["namespace"] == namespace
    assert re.match(r"^[0-9a-f-]{36}$", meta["uid"])
    assert RFC3339_Z.match(meta["creationTimestamp"])
    assert int(meta["resourceVersion"]) > 0
    fetched = await cluster.get(kinds.CONFIG_MAP, meta["name"], namespace)
    assert fetched["data"] == {"a": "1"}
    assert fetched["metadata"]["uid"] == meta["uid"]


async def test_namespace_in_object_is_used_without_argument(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(config_map(namespace=namespace))
    assert created["metadata"]["namespace"] == namespace


async def test_every_write_takes_a_higher_resource_version(
    cluster: Cluster, namespace: str
) -> None:
    first = await cluster.create(config_map(), namespace=namespace)
    second = await cluster.create(config_map(), namespace=namespace)
    patched = await cluster.patch(kinds.CONFIG_MAP, first["metadata"]["name"],
                                  {"data": {"x": "y"}}, namespace)
    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, patched)]
    assert versions == sorted(set(versions))
    listed = await cluster.list(kinds.CONFIG_MAP, namespace)
    assert int(listed.resource_version) >= versions[-1]


async def test_generate_name_appends_five_characters(cluster: Cluster, namespace: str) -> None:
    obj = config_map()
    del obj["metadata"]["name"]
    obj["metadata"]["generateName"] = "gen-"
    names = set()
    for _ in range(3):
        created = await cluster.create(obj, namespace=namespace)
        name = created["metadata"]["name"]
        assert re.match(r"^gen-[a-z0-9]{5}$", name)
        names.add(name)
    assert len(names) == 3


async def test_duplicate_name_is_already_exists(cluster: Cluster, namespace: str) -> None:
    obj = config_map()
    await cluster.create(obj, namespace=namespace)
    with pytest.raises(AlreadyExists):
        await cluster.create(obj, namespace=namespace)


async def test_missing_objects_are_not_found(cluster: Cluster, namespace: str) -> None:
    missing = unique("missing")
    with pytest.raises(NotFound):
        await cluster.get(kinds.CONFIG_MAP, missing, namespace)
    with pytest.raises(NotFound):
        await cluster.delete(kinds.CONFIG_MAP, missing, namespace)
    with pytest.raises(NotFound):
        await cluster.patch(kinds.CONFIG_MAP, missing, {"data": {"a": "b"}}, namespace)
    with pytest.raises(NotFound):
        await cluster.replace(config_map(missing, namespace=namespace))


async def test_object_without_name_is_invalid(cluster: Cluster, namespace: str) -> None:
    obj = config_map()
    del obj["metadata"]["name"]
    with pytest.raises(Invalid):
        await cluster.create(obj, namespace=namespace)


async def test_replace_with_stale_resource_version_conflicts(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(config_map(data={"v": "1"}), namespace=namespace)
    fresh = dict(created, data={"v": "2"})
    updated = await cluster.replace(fresh)
    assert updated["data"] == {"v": "2"}
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    stale = dict(created, data={"v": "3"})
    with pytest.raises(Conflict):
        await cluster.replace(stale)
    assert (await cluster.get(kinds.CONFIG_MAP, created["metadata"]["name"], namespace))[
        "data"] == {"v": "2"}


async def test_replace_without_resource_version_is_unconditional(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(config_map(data={"v": "1"}), namespace=namespace)
    await cluster.patch(kinds.CONFIG_MAP, created["metadata"]["name"], {"data": {"v": "2"}},
                        namespace)
    blind = config_map(created["metadata"]["name"], namespace=namespace, data={"v": "3"})
    replaced = await cluster.replace(blind)
    assert replaced["data"] == {"v": "3"}
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]


async def test_replace_keeps_uid_and_creation_timestamp(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(config_map(), namespace=namespace)
    attempt = dict(created)
    attempt["metadata"] = {**created["metadata"], "labels": {"x": "y"}}
    replaced = await cluster.replace(attempt)
    assert replaced["metadata"]["labels"] == {"x": "y"}
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert replaced["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


async def test_cluster_scoped_objects_ignore_namespace(cluster: Cluster) -> None:
    name = unique("ct-scoped")
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        fetched = await cluster.get(kinds.NAMESPACE, name, "ignored")
        assert "namespace" not in fetched["metadata"] or not fetched["metadata"]["namespace"]
        assert fetched["status"]["phase"] == "Active"
    finally:
        await cluster.delete(kinds.NAMESPACE, name)
