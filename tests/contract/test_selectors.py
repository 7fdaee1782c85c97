"""Label and field selectors on list."""

from __future__ import annotations

import pytest

from cyclone.kube import kinds
from cyclone.kube.protocol import Cluster

from .manifests import config_map, node, pod

OURS = {"a", "b", "c", "d"}


@pytest.fixture
async def labelled(cluster: Cluster, namespace: str) -> str:
    for name, labels in (
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "web", "tier": "back"}),
        ("c", {"app": "db"}),
        ("d", {}),
    ):
        await cluster.create(config_map(name, labels=labels), namespace=namespace)
    return namespace


async def _names(cluster: Cluster, namespace: str, selector: str) -> list[str]:
    listed = await cluster.list(kinds.CONFIG_MAP, namespace, label_selector=selector)
    return sorted(o["metadata"]["name"] for o in listed.items if o["metadata"]["name"] in OURS)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),
        ("app in (db, web),tier!=back", ["a", "c"]),
        ("app notin (web)", ["c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("app=web,tier=back", ["b"]),
        ("", ["a", "b", "c", "d"]),
    ],
)
async def test_label_selector_on_list(
    cluster: Cluster, labelled: str, selector: str, expected: list[str]
) -> None:
    assert await _names(cluster, labelled, selector) == expected


async def test_field_selector_on_name(cluster: Cluster, labelled: str) -> None:
    listed = await cluster.list(kinds.CONFIG_MAP, labelled, field_selector="metadata.name=c")
    assert [o["metadata"]["name"] for o in listed.items] == ["c"]
    listed = await cluster.list(kinds.CONFIG_MAP, labelled, field_selector="metadata.name!=c")
    assert sorted(o["metadata"]["name"] for o in listed.items if o["metadata"]["name"] in OURS) == [
        "a", "b", "d"]


async def test_field_selector_on_namespace_across_namespaces(
    cluster: Cluster, labelled: str
) -> None:
    listed = await cluster.list(kinds.CONFIG_MAP, None,
                                field_selector=f"metadata.namespace={labelled}")
    assert sorted(o["metadata"]["name"] for o in listed.items if o["metadata"]["name"] in OURS) == [
        "a", "b", "c", "d"]


async def test_pod_field_selectors_on_node_and_phase(cluster: Cluster, namespace: str) -> None:
    worker = await cluster.create(node())
    node_name = worker["metadata"]["name"]
    try:
        await cluster.create(pod("bound"), namespace=namespace)
        await cluster.create(pod("free"), namespace=namespace)
        await cluster.bind_pod("bound", namespace, node_name)
        on_node = await cluster.list(kinds.POD, namespace,
                                     field_selector=f"spec.nodeName={node_name}")
        assert [p["metadata"]["name"] for p in on_node.items] == ["bound"]
        unbound = await cluster.list(kinds.POD, namespace, field_selector="spec.nodeName=")
        assert [p["metadata"]["name"] for p in unbound.items] == ["free"]
        free = await cluster.get(kinds.POD, "free", namespace)
        free["status"] = {**free.get("status", {}), "phase": "Failed"}
        await cluster.replace_status(free)
        failed = await cluster.list(kinds.POD, namespace, field_selector="status.phase=Failed")
        assert [p["metadata"]["name"] for p in failed.items] == ["free"]
    finally:
        await cluster.delete(kinds.NODE, node_name)
