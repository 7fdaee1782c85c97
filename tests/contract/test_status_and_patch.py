"""The status subresource, merge and JSON patches, and patch preconditions."""

from __future__ import annotations

import pytest

from cyclone.kube import kinds
from cyclone.kube.errors import Conflict, Invalid
from cyclone.kube.protocol import Cluster

from .manifests import config_map, pod


async def test_replace_ignores_status_of_kinds_with_status_subresource(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(pod(), namespace=namespace)
    attempt = dict(created)
    attempt["metadata"] = {**created["metadata"], "labels": {"changed": "yes"}}
    attempt["status"] = {**created.get("status", {}), "phase": "Running"}
    replaced = await cluster.replace(attempt)
    assert replaced["metadata"]["labels"] == {"changed": "yes"}
    assert replaced["status"]["phase"] == "Pending"


async def test_replace_status_changes_only_status(cluster: Cluster, namespace: str) -> None:
    created = await cluster.create(pod(), namespace=namespace)
    attempt = dict(created)
    attempt["spec"] = {**created["spec"], "activeDeadlineSeconds": 99}
    attempt["status"] = {**created.get("status", {}), "phase": "Running"}
    updated = await cluster.replace_status(attempt)
    assert updated["status"]["phase"] == "Running"
    assert "activeDeadlineSeconds" not in updated["spec"]
    with pytest.raises(Conflict):
        await cluster.replace_status(dict(created, status={"phase": "Failed"}))


async def test_patch_of_status_subresource_changes_only_status(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(pod(), namespace=namespace)
    name = created["metadata"]["name"]
    patched = await cluster.patch(
        kinds.POD, name, {"spec": {"activeDeadlineSeconds": 99},
                          "status": {"phase": "Running"}},
        namespace, subresource="status",
    )
    assert patched["status"]["phase"] == "Running"
    assert "activeDeadlineSeconds" not in patched["spec"]
    main = await cluster.patch(kinds.POD, name, {"metadata": {"labels": {"kept": "yes"}},
                                                 "status": {"phase": "Failed"}}, namespace)
    assert main["metadata"]["labels"] == {"kept": "yes"}
    assert main["status"]["phase"] == "Running"


async def test_merge_patch_merges_maps_and_null_removes(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(config_map(data={"a": "1", "b": "2"}, labels={"x": "1"}),
                                   namespace=namespace)
    patched = await cluster.patch(
        kinds.CONFIG_MAP, created["metadata"]["name"],
        {"data": {"a": None, "c": "3"}, "metadata": {"labels": {"y": "2"}}}, namespace,
    )
    assert patched["data"] == {"b": "2", "c": "3"}
    assert patched["metadata"]["labels"] == {"x": "1", "y": "2"}


async def test_strategic_patch_of_a_map_merges(cluster: Cluster, namespace: str) -> None:
    created = await cluster.create(config_map(data={"a": "1"}), namespace=namespace)
    patched = await cluster.patch(kinds.CONFIG_MAP, created["metadata"]["name"],
                                  {"data": {"b": "2"}}, namespace, patch_type="strategic")
    assert patched["data"] == {"a": "1", "b": "2"}


async def test_json_patch_operations(cluster: Cluster, namespace: str) -> None:
    created = await cluster.create(config_map(data={"a": "1", "b": "2"}), namespace=namespace)
    patched = await cluster.patch(
        kinds.CONFIG_MAP, created["metadata"]["name"],
        [
            {"op": "test", "path": "/data/a", "value": "1"},
            {"op": "add", "path": "/data/c", "value": "3"},
            {"op": "replace", "path": "/data/a", "value": "one"},
            {"op": "remove", "path": "/data/b"},
            {"op": "copy", "from": "/data/c", "path": "/data/d"},
            {"op": "move", "from": "/data/c", "path": "/data/e"},
        ],
        namespace, patch_type="json",
    )
    assert patched["data"] == {"a": "one", "d": "3", "e": "3"}


async def test_failed_json_patch_test_is_invalid_and_changes_nothing(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(config_map(data={"a": "1"}), namespace=namespace)
    name = created["metadata"]["name"]
    with pytest.raises(Invalid):
        await cluster.patch(
            kinds.CONFIG_MAP, name,
            [{"op": "add", "path": "/data/z", "value": "1"},
             {"op": "test", "path": "/data/a", "value": "2"}],
            namespace, patch_type="json",
        )
    assert (await cluster.get(kinds.CONFIG_MAP, name, namespace))["data"] == {"a": "1"}


async def test_patch_with_stale_resource_version_conflicts(
    cluster: Cluster, namespace: str
) -> None:
    created = await cluster.create(config_map(data={"a": "1"}), namespace=namespace)
    name, version = created["metadata"]["name"], created["metadata"]["resourceVersion"]
    current = await cluster.patch(kinds.CONFIG_MAP, name, {"data": {"a": "2"}}, namespace,
                                  resource_version=version)
    with pytest.raises(Conflict):
        await cluster.patch(kinds.CONFIG_MAP, name, {"data": {"a": "3"}}, namespace,
                            resource_version=version)
    with pytest.raises(Conflict):
        await cluster.patch(kinds.CONFIG_MAP, name,
                            {"metadata": {"resourceVersion": version}, "data": {"a": "3"}},
                            namespace)
    assert (await cluster.get(kinds.CONFIG_MAP, name, namespace))["metadata"][
        "resourceVersion"] == current["metadata"]["resourceVersion"]
