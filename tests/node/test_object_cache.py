"""The node's cache of referenced Secrets and ConfigMaps, on both clusters."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.clusters import CLUSTER_FACTORIES, cluster_params, eventually

from cyclone.kube import kinds
from cyclone.kube.errors import Gone, NotFound
from cyclone.kube.protocol import Cluster, WatchEvent
from cyclone.node.object_cache import ReferencedObjects


class RecordingCluster:
    """Passes calls through, counting them and the watch streams still open; can answer
    the next watch with Gone."""

    def __init__(self, inner: Cluster) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: Counter[str] = Counter()
        self.open_watches = 0
        self.expire_next_watch = False

    async def get(self, *args: Any, **kwargs: Any) -> dict:
        self.calls["get"] += 1
        return await self.inner.get(*args, **kwargs)

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["list"] += 1
        return await self.inner.list(*args, **kwargs)

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[WatchEvent]:
        self.calls["watch"] += 1
        if self.expire_next_watch:
            self.expire_next_watch = False
            raise Gone("too old resource version")
        self.open_watches += 1
        try:
            async for event in self.inner.watch(*args, **kwargs):
                yield event
        finally:
            self.open_watches -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=cluster_params())
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with CLUSTER_FACTORIES[request.param](tmp_path) as opened:
        yield opened


@pytest.fixture
async def namespace(cluster: Cluster) -> AsyncIterator[str]:
    name = f"oc-{secrets.token_hex(4)}"
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.NAMESPACE, name)


@pytest.fixture
async def recording(cluster: Cluster) -> RecordingCluster:
    return RecordingCluster(cluster)


def config_map(name: str, namespace: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": {"key": value}}


def secret(name: str, namespace: str, value: bytes) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"token": base64.b64encode(value).decode()}}


async def test_pods_sharing_an_object_pay_two_lists_and_one_watch_whatever_their_number(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    await cluster.create(config_map("shared", namespace, "v1"))
    async with ReferencedObjects(recording) as objects:
        pods = [f"pod-{i}" for i in range(10)]
        found = [await objects.get(kinds.CONFIG_MAP, namespace, "shared", holder=pod)
                 for pod in pods]

        assert all(obj["data"] == {"key": "v1"} for obj in found)
        await eventually(lambda: recording.open_watches == 1)
        assert (recording.calls["list"], recording.calls["watch"]) == (2, 1)
        assert recording.calls["get"] == 0
        assert objects.watching(kinds.CONFIG_MAP, namespace, "shared")


async def test_pods_arriving_together_on_an_object_pay_one_list(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    await cluster.create(config_map("burst", namespace, "v1"))
    async with ReferencedObjects(recording) as objects:
        found = await asyncio.gather(*(
            objects.get(kinds.CONFIG_MAP, namespace, "burst", holder=f"pod-{i}")
            for i in range(10)))

        assert all(obj["data"] == {"key": "v1"} for obj in found)
        await eventually(lambda: recording.open_watches == 1)
        assert (recording.calls["list"], recording.calls["watch"]) == (1, 1)


async def test_an_object_of_one_pod_is_listed_each_time_without_a_watch(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    await cluster.create(secret("own", namespace, b"v1"))
    async with ReferencedObjects(recording) as objects:
        await objects.get(kinds.SECRET, namespace, "own", holder="pod-a")
        await cluster.patch(kinds.SECRET, "own",
                            {"data": {"token": base64.b64encode(b"v2").decode()}}, namespace)
        again = await objects.get(kinds.SECRET, namespace, "own", holder="pod-a")

        assert base64.b64decode(again["data"]["token"]) == b"v2"
        assert (recording.calls["list"], recording.calls["watch"]) == (2, 0)
        assert not objects.watching(kinds.SECRET, namespace, "own")


async def test_release_of_the_last_reference_stops_the_watch_after_the_linger(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    await cluster.create(secret("creds", namespace, b"s3cret"))
    async with ReferencedObjects(recording, linger_seconds=0.3) as objects:
        await objects.get(kinds.SECRET, namespace, "creds", holder="pod-a")
        await objects.get(kinds.SECRET, namespace, "creds", holder="pod-b")
        await eventually(lambda: recording.open_watches == 1)

        objects.release("pod-a")
        objects.release("pod-b")
        assert objects.watching(kinds.SECRET, namespace, "creds")
        await eventually(lambda: len(objects) == 0 and recording.open_watches == 0)
        assert not objects.watching(kinds.SECRET, namespace, "creds")
        assert recording.calls["watch"] == 1


async def test_without_a_linger_the_last_release_forgets_at_once(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    await cluster.create(secret("creds", namespace, b"s3cret"))
    async with ReferencedObjects(recording, linger_seconds=0) as objects:
        await objects.get(kinds.SECRET, namespace, "creds", holder="pod-a")
        await objects.get(kinds.SECRET, namespace, "creds", holder="pod-b")
        objects.release("pod-a")
        objects.release("pod-b")
        assert len(objects) == 0
        await eventually(lambda: recording.open_watches == 0)


async def test_pods_one_after_the_other_share_an_object_like_pods_that_overlap(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    await cluster.create(config_map("ca", namespace, "v1"))
    async with ReferencedObjects(recording, linger_seconds=30) as objects:
        for index in range(10):
            pod = f"pod-{index}"
            found = await objects.get(kinds.CONFIG_MAP, namespace, "ca", holder=pod)
            assert found["data"] == {"key": "v1"}
            objects.release(pod)
        await eventually(lambda: recording.open_watches == 1)
        assert (recording.calls["list"], recording.calls["watch"]) == (2, 1)
        await cluster.patch(kinds.CONFIG_MAP, "ca", {"data": {"key": "v2"}}, namespace)
        entry = next(iter(objects._entries.values()))
        await eventually(lambda: entry.object["data"] == {"key": "v2"})
        again = await objects.get(kinds.CONFIG_MAP, namespace, "ca", holder="pod-late")
        assert again["data"] == {"key": "v2"}
        assert recording.calls["list"] == 2


async def test_an_object_created_after_a_miss_is_found_by_a_new_pod(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    async with ReferencedObjects(recording) as objects:
        for pod in ("pod-a", "pod-b"):
            with pytest.raises(NotFound):
                await objects.get(kinds.SECRET, namespace, "late", holder=pod)
        assert objects.watching(kinds.SECRET, namespace, "late")

        await cluster.create(secret("late", namespace, b"bound"))
        found = await objects.get(kinds.SECRET, namespace, "late", holder="pod-c")

        assert base64.b64decode(found["data"]["token"]) == b"bound"


async def test_an_update_arrives_through_the_watch(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    await cluster.create(config_map("settings", namespace, "v1"))
    async with ReferencedObjects(recording) as objects:
        await objects.get(kinds.CONFIG_MAP, namespace, "settings", holder="pod-a")
        await objects.get(kinds.CONFIG_MAP, namespace, "settings", holder="pod-b")
        await cluster.patch(kinds.CONFIG_MAP, "settings", {"data": {"key": "v2"}}, namespace)

        async def updated() -> bool:
            got = await objects.get(kinds.CONFIG_MAP, namespace, "settings", holder="pod-c")
            return got["data"] == {"key": "v2"}

        await eventually(updated)
        assert recording.calls["list"] == 2


async def test_a_deleted_object_is_missing_for_the_next_pod(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    await cluster.create(config_map("brief", namespace, "v1"))
    async with ReferencedObjects(recording) as objects:
        await objects.get(kinds.CONFIG_MAP, namespace, "brief", holder="pod-a")
        await objects.get(kinds.CONFIG_MAP, namespace, "brief", holder="pod-b")
        await cluster.delete(kinds.CONFIG_MAP, "brief", namespace)

        async def missing() -> bool:
            try:
                await objects.get(kinds.CONFIG_MAP, namespace, "brief", holder="pod-c")
            except NotFound:
                return True
            return False

        await eventually(missing)


async def test_an_expired_watch_relists_and_keeps_following(
    cluster: Cluster, recording: RecordingCluster, namespace: str
) -> None:
    await cluster.create(config_map("followed", namespace, "v1"))
    recording.expire_next_watch = True
    async with ReferencedObjects(recording) as objects:
        await objects.get(kinds.CONFIG_MAP, namespace, "followed", holder="pod-a")
        await objects.get(kinds.CONFIG_MAP, namespace, "followed", holder="pod-b")
        await eventually(lambda: recording.calls["list"] == 3 and recording.open_watches == 1)

        await cluster.patch(kinds.CONFIG_MAP, "followed", {"data": {"key": "v2"}}, namespace)

        async def updated() -> bool:
            got = await objects.get(kinds.CONFIG_MAP, namespace, "followed", holder="pod-a")
            return got["data"] == {"key": "v2"}

        await eventually(updated)
        assert recording.calls["watch"] == 2


async def test_a_pod_never_gets_the_same_named_secret_of_another_namespace(
    cluster: Cluster, namespace: str
) -> None:
    other = f"oc-{secrets.token_hex(4)}"
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    try:
        await cluster.create(secret("token", namespace, b"victim"))
        async with ReferencedObjects(cluster) as objects:
            for holder in ("victim-1", "victim-2"):
                held = await objects.get(kinds.SECRET, namespace, "token", holder=holder)
                assert held["data"]["token"] == base64.b64encode(b"victim").decode()
            await eventually(lambda: objects.watching(kinds.SECRET, namespace, "token"))

            with pytest.raises(NotFound):
                await objects.get(kinds.SECRET, other, "token", holder="attacker")
            await cluster.create(secret("token", other, b"attacker"))
            own = await objects.get(kinds.SECRET, other, "token", holder="attacker")
            assert own["data"]["token"] == base64.b64encode(b"attacker").decode()
            assert own["metadata"]["namespace"] == other
    finally:
        with contextlib.suppress(NotFound):
            await cluster.delete(kinds.NAMESPACE, other)
