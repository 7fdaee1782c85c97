import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clusters import eventually

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import Gone, Unavailable
from cyclone.kube.informer import Informer, object_key
from cyclone.kube.protocol import ObjectList, WatchEvent


def _cm(name: str, rv: int, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv),
                         "labels": labels}}


class ScriptedCluster:
    """Answers list and watch calls from a script, recording the versions asked for."""

    name = "scripted"

    def __init__(self) -> None:
        self.lists = [
            ObjectList([_cm("a", 1), _cm("b", 2)], "5"),
            ObjectList([_cm("a", 7), _cm("c", 8)], "8"),
        ]
        self.watch_versions: list[str | None] = []

    async def list(self, kind, namespace=None, **_: object) -> ObjectList:
        return self.lists.pop(0)

    async def watch(self, kind, namespace=None, *, resource_version=None,
                    **_: object) -> AsyncIterator[WatchEvent]:
        self.watch_versions.append(resource_version)
        if resource_version == "5":
            yield WatchEvent("MODIFIED", _cm("a", 6))
            return
        if resource_version == "6":
            raise Gone("too old resource version")
        await asyncio.Event().wait()


async def test_relist_on_gone_emits_the_differences() -> None:
    cluster = ScriptedCluster()
    informer = Informer(cluster, kinds.CONFIG_MAP, "ns")  # type: ignore[arg-type]
    events: list[tuple[str, str, str | None]] = []
    informer.add_handler(lambda t, obj, old: events.append(
        (t, obj["metadata"]["name"] + "@" + obj["metadata"]["resourceVersion"],
         old["metadata"]["resourceVersion"] if old else None)))
    async with asyncio.TaskGroup() as group:
        task = group.create_task(informer.run())
        await eventually(lambda: cluster.watch_versions == ["5", "6", "8"])
        task.cancel()
    assert events == [
        ("ADDED", "a@1", None), ("ADDED", "b@2", None),
        ("MODIFIED", "a@6", "1"),
        ("MODIFIED", "a@7", "6"), ("ADDED", "c@8", None), ("DELETED", "b@2", "2"),
    ]
    assert sorted(informer.keys()) == ["ns/a", "ns/c"]
    assert informer.get("ns", "a")["metadata"]["resourceVersion"] == "7"
    assert informer.resource_version == "8"


async def test_cache_follows_the_cluster(tmp_path: Path) -> None:
    async with EmbeddedCluster(tmp_path / "c.db") as cluster:
        await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "early", "namespace": "default",
                                           "labels": {"t": "x"}}})
        informer = Informer(cluster, kinds.CONFIG_MAP, "default")
        async with asyncio.TaskGroup() as group:
            task = group.create_task(informer.run())
            await informer.wait_synced()
            assert informer.get("default", "early") is not None
            late_events: list[str] = []
            informer.add_handler(lambda t, obj, old: late_events.append(
                f"{t}:{obj['metadata']['name']}"))
            assert late_events == ["ADDED:early"]
            await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "late", "namespace": "default"}})
            await cluster.delete(kinds.CONFIG_MAP, "early", "default")
            await eventually(lambda: informer.get("default", "early") is None
                             and informer.get_by_key("default/late") is not None)
            assert [o["metadata"]["name"] for o in informer.list("default")] == ["late"]
            assert informer.list(label_selector="t=x") == []
            assert late_events[-2:] == ["ADDED:late", "DELETED:early"]
            task.cancel()


async def test_resync_re_emits_modified(tmp_path: Path) -> None:
    async with EmbeddedCluster(tmp_path / "c.db") as cluster:
        informer = Informer(cluster, kinds.NAMESPACE, resync_seconds=0.05)
        resynced: list[str] = []
        informer.add_handler(lambda t, obj, old: resynced.append(obj["metadata"]["name"])
                             if t == "MODIFIED" and obj is old else None)
        async with asyncio.TaskGroup() as group:
            task = group.create_task(informer.run())
            await eventually(lambda: resynced.count("default") >= 2)
            task.cancel()


class FlakyCluster:
    """Fails its first two lists, then answers."""

    name = "flaky"

    def __init__(self) -> None:
        self.attempts = 0

    async def list(self, kind, namespace=None, **_: object) -> ObjectList:
        self.attempts += 1
        if self.attempts <= 2:
            raise Unavailable("connection refused")
        return ObjectList([_cm("a", 1)], "1")

    async def watch(self, kind, namespace=None, **_: object) -> AsyncIterator[WatchEvent]:
        await asyncio.Event().wait()
        yield WatchEvent("BOOKMARK", {})


async def test_errors_are_retried_with_backoff_until_synced() -> None:
    cluster = FlakyCluster()
    informer = Informer(cluster, kinds.CONFIG_MAP, "ns")  # type: ignore[arg-type]
    async with asyncio.TaskGroup() as group:
        task = group.create_task(informer.run())
        async with asyncio.timeout(5):
            await informer.wait_synced()
        task.cancel()
    assert cluster.attempts == 3
    assert informer.keys() == ["ns/a"]


class _Lister:
    """Answers a list with the objects it is given (no watch: the test applies events)."""

    name = "lister"

    def __init__(self) -> None:
        self.items: list[dict] = []

    async def list(self, kind, namespace=None, **_: object) -> ObjectList:
        return ObjectList(list(self.items), "1")


def _owner(obj: dict) -> str | None:
    return (obj.get("data") or {}).get("owner")


async def test_an_index_finds_what_looking_at_every_object_finds() -> None:
    rng = random.Random(7)
    lister = _Lister()
    indexed = Informer(lister, kinds.CONFIG_MAP, index_labels=("run",),  # type: ignore[arg-type]
                       indexers={"owner": _owner})
    plain = Informer(lister, kinds.CONFIG_MAP)  # type: ignore[arg-type]
    objects: dict[tuple[str, str], dict] = {}
    selectors = [None, "run=r1", "run in (r2,r3)", "run=r1,kind=x", "kind=x", "run!=r1",
                 "run", "!run", "run=r9"]
    for step in range(1500):
        key = (rng.choice(["ns1", "ns2"]), f"o{rng.randrange(30)}")
        roll = rng.random()
        if roll < 0.05:
            lister.items = list(objects.values())
            await indexed._relist()
            await plain._relist()
        elif roll < 0.3 and key in objects:
            gone = objects.pop(key)
            indexed._apply("DELETED", gone)
            plain._apply("DELETED", gone)
        else:
            labels = {}
            if rng.random() < 0.8:
                labels["run"] = f"r{rng.randrange(5)}"
            if rng.random() < 0.5:
                labels["kind"] = rng.choice(["x", "y"])
            obj = _cm(key[1], step, **labels)
            obj["metadata"]["namespace"] = key[0]
            if rng.random() < 0.7:
                obj["data"] = {"owner": f"w{rng.randrange(4)}"}
            event = "MODIFIED" if key in objects else "ADDED"
            objects[key] = obj
            indexed._apply(event, obj)
            plain._apply(event, obj)
        for selector in selectors:
            for namespace in (None, "ns1"):
                found = sorted(o["metadata"]["namespace"] + "/" + o["metadata"]["name"]
                               for o in indexed.list(namespace, selector))
                assert found == sorted(o["metadata"]["namespace"] + "/" + o["metadata"]["name"]
                                       for o in plain.list(namespace, selector)), (step, selector)
        for owner in ("w0", "w1", "w3", "w9"):
            assert sorted(object_key(o) for o in indexed.by_index("owner", owner)) == sorted(
                object_key(o) for o in plain.list() if _owner(o) == owner), (step, owner)
    assert all(keys for by_value in indexed._index.values() for keys in by_value.values())


def test_an_indexer_may_not_take_the_name_of_an_indexed_label() -> None:
    with pytest.raises(ValueError, match="indexed label"):
        Informer(_Lister(), kinds.CONFIG_MAP, index_labels=("run",),  # type: ignore[arg-type]
                 indexers={"run": _owner})
