"""Watch from a resourceVersion, from now, with selectors and a timeout."""

from __future__ import annotations

import asyncio

from cyclone.kube import kinds
from cyclone.kube.protocol import Cluster, WatchEvent

from .manifests import config_map, node, pod


async def _collect(stream, count: int, within: float = 15.0) -> list[WatchEvent]:
    events: list[WatchEvent] = []
    async with asyncio.timeout(within):
        async for event in stream:
            if event.type != "BOOKMARK":
                events.append(event)
            if len(events) == count:
                break
    return events


def _summary(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(e.type, e.object["metadata"]["name"]) for e in events]


async def test_watch_from_version_replays_changes_in_order(
    cluster: Cluster, namespace: str
) -> None:
    start = (await cluster.list(kinds.CONFIG_MAP, namespace)).resource_version
    await cluster.create(config_map("w1"), namespace=namespace)
    await cluster.patch(kinds.CONFIG_MAP, "w1", {"data": {"a": "1"}}, namespace)
    await cluster.delete(kinds.CONFIG_MAP, "w1", namespace)
    events = await _collect(
        cluster.watch(kinds.CONFIG_MAP, namespace, resource_version=start,
                      label_selector="!absent"),
        3,
    )
    assert _summary(events) == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    assert events[1].object["data"] == {"a": "1"}
    versions = [int(e.object["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3


async def test_watch_without_version_starts_with_current_objects(
    cluster: Cluster, namespace: str
) -> None:
    await cluster.create(config_map("pre", labels={"w": "x"}), namespace=namespace)
    stream = cluster.watch(kinds.CONFIG_MAP, namespace, label_selector="w=x")
    first = await _collect(stream, 1)
    assert _summary(first) == [("ADDED", "pre")]
    await cluster.create(config_map("post", labels={"w": "x"}), namespace=namespace)
    later = await _collect(stream, 1)
    assert _summary(later) == [("ADDED", "post")]
    await stream.aclose()


async def test_watch_sees_live_changes(cluster: Cluster, namespace: str) -> None:
    start = (await cluster.list(kinds.CONFIG_MAP, namespace)).resource_version
    stream = cluster.watch(kinds.CONFIG_MAP, namespace, resource_version=start,
                           field_selector="metadata.name=live")
    collecting = asyncio.ensure_future(_collect(stream, 2))
    await cluster.create(config_map("other"), namespace=namespace)
    await cluster.create(config_map("live"), namespace=namespace)
    await cluster.patch(kinds.CONFIG_MAP, "live", {"data": {"b": "2"}}, namespace)
    assert _summary(await collecting) == [("ADDED", "live"), ("MODIFIED", "live")]


async def test_label_change_out_of_selector_is_seen_as_deleted(
    cluster: Cluster, namespace: str
) -> None:
    start = (await cluster.list(kinds.CONFIG_MAP, namespace)).resource_version
    await cluster.create(config_map("moving", labels={"sel": "in"}), namespace=namespace)
    await cluster.patch(kinds.CONFIG_MAP, "moving", {"metadata": {"labels": {"sel": "out"}}},
                        namespace)
    await cluster.patch(kinds.CONFIG_MAP, "moving", {"metadata": {"labels": {"sel": "in"}}},
                        namespace)
    events = await _collect(
        cluster.watch(kinds.CONFIG_MAP, namespace, label_selector="sel=in",
                      resource_version=start),
        3,
    )
    assert _summary(events) == [("ADDED", "moving"), ("DELETED", "moving"),
                                ("ADDED", "moving")]


async def test_watch_timeout_ends_the_stream(cluster: Cluster, namespace: str) -> None:
    start = (await cluster.list(kinds.CONFIG_MAP, namespace)).resource_version
    events = []
    async with asyncio.timeout(15):
        async for event in cluster.watch(kinds.CONFIG_MAP, namespace, resource_version=start,
                                         timeout_seconds=1):
            events.append(event)
    published = "kube-root-ca.crt"  # kube-controller-manager adds it to new namespaces
    assert [e for e in events if e.type != "BOOKMARK"
            and e.object["metadata"]["name"] != published] == []


async def test_watch_of_all_namespaces_filters_by_kind(
    cluster: Cluster, namespace: str
) -> None:
    start = (await cluster.list(kinds.SECRET)).resource_version
    await cluster.create(config_map("watched"), namespace=namespace)
    await cluster.create({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "watched"}, "stringData": {"k": "v"}},
                         namespace=namespace)
    events = await _collect(
        cluster.watch(kinds.SECRET, None, resource_version=start,
                      field_selector=f"metadata.namespace={namespace},metadata.name=watched"),
        1,
    )
    assert _summary(events) == [("ADDED", "watched")]


async def test_binding_shows_up_as_added_for_a_node_watch(
    cluster: Cluster, namespace: str
) -> None:
    worker = await cluster.create(node())
    node_name = worker["metadata"]["name"]
    try:
        created = await cluster.create(pod("to-bind"), namespace=namespace)
        stream = cluster.watch(kinds.POD, namespace, field_selector=f"spec.nodeName={node_name}",
                               resource_version=created["metadata"]["resourceVersion"])
        collecting = asyncio.ensure_future(_collect(stream, 1))
        await cluster.bind_pod("to-bind", namespace, node_name)
        events = await collecting
        assert _summary(events) == [("ADDED", "to-bind")]
        assert events[0].object["spec"]["nodeName"] == node_name
    finally:
        await cluster.delete(kinds.NODE, node_name)
