"""The embedded store's parsed current objects and the read-only views watchers share:
exact across writes, conflicts, rollbacks, deletes, restarts and other processes' writes,
and safe against a consumer that tries to change what it was given."""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.embedded.frozen import (
    FrozenDict,
    FrozenList,
    enforced,
    enforcing,
    freeze,
    is_frozen,
    parse,
)
from cyclone.kube.embedded.store import kind_key
from cyclone.kube.errors import Conflict, Invalid
from cyclone.kube.protocol import WatchEvent

NAMESPACE = "default"


def _run(name: str = "run", stages: int = 3) -> dict:
    return {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"team": "a"}},
            "spec": {"workflowRef": {"name": "wf"}}}


def _stage_status(count: int, phase: str = "Pending") -> dict:
    return {"status": {"stages": {f"s{i}": {"status": {"phase": phase}}
                                  for i in range(count)}}}


@pytest.fixture(autouse=True, params=["read-only", "shared"])
def objects_mode(request: pytest.FixtureRequest):
    """Both ways the store hands out objects: read-only containers (the check tests and
    debugging run under) and plain ones shared all the same (the default)."""
    with enforcing(request.param == "read-only"):
        yield request.param


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[EmbeddedCluster]:
    async with EmbeddedCluster(tmp_path / "c.db") as opened:
        yield opened


def _cached(cluster: EmbeddedCluster, name: str = "run") -> dict | None:
    key = (kind_key(kinds.WORKFLOW_RUN), NAMESPACE, name)
    version = cluster.current_objects.version_of(key)
    return None if version is None else cluster.current_objects.get(key, version)


async def _stored(cluster: EmbeddedCluster, name: str = "run") -> dict:
    """The object as its stored text says (a private parse, never the cache)."""
    return await cluster.get(kinds.WORKFLOW_RUN, name, NAMESPACE)


async def _status_patch(cluster: EmbeddedCluster, patch: dict, **kwargs) -> dict:
    return await cluster.patch(kinds.WORKFLOW_RUN, "run", patch, NAMESPACE,
                               subresource="status", **kwargs)


def test_frozen_containers_refuse_every_change() -> None:
    with enforcing():
        obj = freeze({"a": {"b": [1, {"c": 2}]}})
    attempts = [
        lambda: obj.__setitem__("x", 1), lambda: obj.pop("a"), lambda: obj.update(x=1),
        lambda: obj.setdefault("x", 1), lambda: obj.clear(), lambda: obj.popitem(),
        lambda: obj["a"].__delitem__("b"), lambda: obj["a"]["b"].append(3),
        lambda: obj["a"]["b"].sort(), lambda: obj["a"]["b"][1].__setitem__("c", 3),
        lambda: obj["a"]["b"].__setitem__(0, 5), lambda: obj["a"]["b"].extend([1]),
    ]
    for attempt in attempts:
        with pytest.raises(TypeError, match="read-only"):
            attempt()
    assert obj == {"a": {"b": [1, {"c": 2}]}}


def test_frozen_objects_read_encode_and_copy_as_plain_json() -> None:
    plain = {"a": {"b": [1, {"c": None}], "d": "e"}, "n": 1.5}
    with enforcing():
        obj = parse(orjson.dumps(plain))
    assert obj == plain and isinstance(obj, dict) and isinstance(obj["a"]["b"], list)
    assert is_frozen(obj) and is_frozen(obj["a"]["b"][1])
    assert orjson.loads(orjson.dumps(obj)) == plain
    assert json.loads(json.dumps(obj)) == plain
    mutable = copy.deepcopy(obj)
    assert type(mutable) is dict and type(mutable["a"]["b"]) is list
    mutable["a"]["b"].append(2)
    assert obj["a"]["b"] == [1, {"c": None}]
    top = copy.copy(obj)
    top["x"] = 1
    assert "x" not in obj


def test_freeze_keeps_frozen_parts_and_copies_plain_ones() -> None:
    with enforcing():
        shared = freeze({"big": list(range(10))})
        plain_part = {"k": [1]}
        built = freeze({"shared": shared, "new": plain_part})
    assert built["shared"] is shared
    assert isinstance(built["new"], FrozenDict) and isinstance(built["new"]["k"], FrozenList)
    plain_part["k"].append(2)
    assert built["new"]["k"] == [1]


async def test_patches_read_the_kept_object_and_store_exactly_what_they_return(
    cluster: EmbeddedCluster,
) -> None:
    await cluster.create(_run())
    await _status_patch(cluster, _stage_status(50))
    hits_before = cluster.current_objects.hits
    for index in range(10):
        written = await _status_patch(
            cluster, {"status": {"stages": {f"s{index}": {"status": {"phase": "Running"}}}}})
        assert written == await _stored(cluster)
        assert _cached(cluster) is written
    assert cluster.current_objects.hits - hits_before == 10
    final = await _stored(cluster)
    assert [final["status"]["stages"][f"s{i}"]["status"]["phase"] for i in (0, 9, 10)] == [
        "Running", "Running", "Pending"]


async def test_a_status_patch_shares_every_part_it_did_not_change(
    cluster: EmbeddedCluster,
) -> None:
    await cluster.create(_run())
    before = await _status_patch(cluster, _stage_status(20))
    after = await _status_patch(cluster, {"status": {"stages": {"s3": {"status": {
        "phase": "Running"}}}}})
    stages_before, stages_after = before["status"]["stages"], after["status"]["stages"]
    assert stages_after["s3"] is not stages_before["s3"]
    assert all(stages_after[f"s{i}"] is stages_before[f"s{i}"] for i in range(20) if i != 3)
    assert after["spec"] is before["spec"]
    assert before["status"]["stages"]["s3"]["status"]["phase"] == "Pending"


async def test_a_conflict_leaves_the_kept_object_current(cluster: EmbeddedCluster) -> None:
    await cluster.create(_run())
    first = await _status_patch(cluster, _stage_status(3))
    second = await _status_patch(cluster, {"status": {"cleaned": True}})
    with pytest.raises(Conflict):
        await _status_patch(cluster, {"status": {"cleaned": False}},
                            resource_version=first["metadata"]["resourceVersion"])
    assert _cached(cluster) is second
    third = await _status_patch(cluster, {"status": {"queued": True}},
                                resource_version=second["metadata"]["resourceVersion"])
    assert third == await _stored(cluster)
    assert third["status"]["cleaned"] is True and third["status"]["queued"] is True


async def test_a_rolled_back_write_is_never_kept(cluster: EmbeddedCluster) -> None:
    created = await cluster.create(_run())

    def write_then_fail(tx):
        current = tx.get(kinds.WORKFLOW_RUN, NAMESPACE, "run")
        tx.put(kinds.WORKFLOW_RUN, {**current, "spec": {"workflowRef": {"name": "other"}}},
               current)
        assert tx.get(kinds.WORKFLOW_RUN, NAMESPACE, "run")["spec"]["workflowRef"] == {
            "name": "other"}
        raise Invalid("refused after the write")

    with pytest.raises(Invalid):
        await cluster._write(write_then_fail)
    assert _cached(cluster) is created
    patched = await cluster.patch(kinds.WORKFLOW_RUN, "run", {"metadata": {"labels": {
        "x": "y"}}}, NAMESPACE)
    assert patched["spec"]["workflowRef"] == {"name": "wf"}
    assert patched == await _stored(cluster)


async def test_a_deleted_and_recreated_object_is_never_served_from_before(
    cluster: EmbeddedCluster,
) -> None:
    await cluster.create(_run())
    await _status_patch(cluster, {"status": {"cleaned": True}})
    assert await cluster.delete(kinds.WORKFLOW_RUN, "run", NAMESPACE) is None
    assert _cached(cluster) is None
    recreated = await cluster.create({**_run(), "spec": {"workflowRef": {"name": "new"}}})
    patched = await _status_patch(cluster, {"status": {"queued": True}})
    assert patched["status"] == {"queued": True}
    assert patched["spec"]["workflowRef"] == {"name": "new"}
    assert patched["metadata"]["uid"] == recreated["metadata"]["uid"]


async def test_writes_of_another_process_on_the_file_are_never_hidden(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with EmbeddedCluster(path) as one, EmbeddedCluster(path) as other:
        await one.create(_run())
        await one.patch(kinds.WORKFLOW_RUN, "run", {"status": {"cleaned": True}}, NAMESPACE,
                        subresource="status")
        await other.patch(kinds.WORKFLOW_RUN, "run", {"status": {"queued": True}}, NAMESPACE,
                          subresource="status")
        patched = await one.patch(kinds.WORKFLOW_RUN, "run", {"status": {"phase": "x"}},
                                  NAMESPACE, subresource="status")
        assert patched["status"] == {"cleaned": True, "queued": True, "phase": "x"}
        assert patched == await other.get(kinds.WORKFLOW_RUN, "run", NAMESPACE)


async def test_the_stored_text_is_what_a_restart_reads(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with EmbeddedCluster(path) as first:
        await first.create(_run())
        written = await first.patch(kinds.WORKFLOW_RUN, "run", _stage_status(5), NAMESPACE,
                                    subresource="status")
    async with EmbeddedCluster(path) as second:
        assert len(second.current_objects) == 1  # the default Namespace, checked on start
        assert await second.get(kinds.WORKFLOW_RUN, "run", NAMESPACE) == written
        again = await second.patch(kinds.WORKFLOW_RUN, "run", {"status": {"stages": {
            "s1": {"status": {"phase": "Running"}}}}}, NAMESPACE, subresource="status")
        assert again["status"]["stages"]["s0"] == {"status": {"phase": "Pending"}}
        assert again["status"]["stages"]["s1"] == {"status": {"phase": "Running"}}


async def test_the_kept_objects_stay_within_their_budget(cluster: EmbeddedCluster) -> None:
    cluster.current_objects.budget_bytes = 4000
    for index in range(20):
        await cluster.create(_run(f"run-{index}"))
    assert cluster.current_objects.size_bytes <= 4000
    assert 0 < len(cluster.current_objects) < 20
    assert _cached(cluster, "run-19") is not None and _cached(cluster, "run-0") is None
    patched = await cluster.patch(kinds.WORKFLOW_RUN, "run-0", {"metadata": {"labels": {
        "x": "y"}}}, NAMESPACE)
    assert patched == await _stored(cluster, "run-0")


async def _next(events: AsyncIterator[WatchEvent]) -> WatchEvent:
    async with asyncio.timeout(10):
        return await anext(events)


async def test_watchers_share_one_read_only_object_that_no_consumer_can_change(
    cluster: EmbeddedCluster,
) -> None:
    created = await cluster.create(_run())
    version = created["metadata"]["resourceVersion"]
    first = cluster.watch(kinds.WORKFLOW_RUN, NAMESPACE, resource_version=version)
    second = cluster.watch(kinds.WORKFLOW_RUN, NAMESPACE, resource_version=version)
    selective = cluster.watch(kinds.WORKFLOW_RUN, NAMESPACE, label_selector="team=a",
                              resource_version=version)
    await _status_patch(cluster, {"status": {"queued": True}})
    for events in (first, second, selective):
        await _next(events)  # each watcher is past the log and follows the feed now
    written = await _status_patch(cluster, _stage_status(3))
    seen = [await _next(first), await _next(second), await _next(selective)]
    assert {event.type for event in seen} == {"MODIFIED"}
    assert seen[0].object is seen[1].object is seen[2].object
    assert seen[0].object == written == await _stored(cluster)
    shared = seen[0].object
    if enforced():
        with pytest.raises(TypeError):
            shared["status"]["stages"]["s0"]["status"]["phase"] = "Hacked"
        with pytest.raises(TypeError):
            shared["metadata"]["labels"]["team"] = "b"
        with pytest.raises(TypeError):
            written["status"]["stages"].pop("s1")
    mine = copy.deepcopy(shared)
    mine["status"]["stages"]["s0"]["status"]["phase"] = "Mine"
    assert seen[1].object["status"]["stages"]["s0"]["status"]["phase"] == "Pending"
    patched = await _status_patch(cluster, {"status": {"cleaned": True}})
    assert patched["status"]["stages"] == _stage_status(3)["status"]["stages"]
    assert patched["status"]["queued"] is True
    assert (await _next(second)).object is (await _next(first)).object
    for events in (first, second, selective):
        await events.aclose()


async def test_a_selective_watcher_sees_objects_enter_and_leave_its_selection(
    cluster: EmbeddedCluster,
) -> None:
    created = await cluster.create(_run())
    version = created["metadata"]["resourceVersion"]
    events = cluster.watch(kinds.WORKFLOW_RUN, NAMESPACE, label_selector="team=a",
                           resource_version=version)
    await _status_patch(cluster, {"status": {"cleaned": True}})
    left = await cluster.patch(kinds.WORKFLOW_RUN, "run", {"metadata": {"labels": {
        "team": "b"}}}, NAMESPACE)
    await _status_patch(cluster, {"status": {"queued": True}})
    back = await cluster.patch(kinds.WORKFLOW_RUN, "run", {"metadata": {"labels": {
        "team": "a"}}}, NAMESPACE)
    seen = [await _next(events) for _ in range(3)]
    assert [event.type for event in seen] == ["MODIFIED", "DELETED", "ADDED"]
    assert seen[1].object["metadata"]["labels"] == {"team": "a"}
    assert seen[1].object["metadata"]["resourceVersion"] == left["metadata"]["resourceVersion"]
    assert seen[2].object == back
    await events.aclose()


async def test_the_old_object_is_logged_only_when_a_selector_could_tell_them_apart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    async with EmbeddedCluster(path) as cluster:
        await cluster.create(_run())
        status = await _status_patch(cluster, _stage_status(3))
        labels = await cluster.patch(kinds.WORKFLOW_RUN, "run", {"metadata": {"labels": {
            "team": "b"}}}, NAMESPACE)
    with sqlite3.connect(path) as conn:
        logged = dict(conn.execute("SELECT rv, old_body IS NOT NULL FROM changes").fetchall())
    assert logged[int(status["metadata"]["resourceVersion"])] == 0
    assert logged[int(labels["metadata"]["resourceVersion"])] == 1


async def test_history_and_other_processes_changes_are_parsed_once_for_all_watchers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    async with EmbeddedCluster(path, poll_interval=0.01) as reader, \
            EmbeddedCluster(path) as writer:
        created = await writer.create(_run())
        version = created["metadata"]["resourceVersion"]
        first = reader.watch(kinds.WORKFLOW_RUN, NAMESPACE, resource_version=version)
        second = reader.watch(kinds.WORKFLOW_RUN, NAMESPACE, resource_version=version)
        written = await writer.patch(kinds.WORKFLOW_RUN, "run", _stage_status(2), NAMESPACE,
                                     subresource="status")
        assert (await _next(first)).object == written == (await _next(second)).object
        again = await writer.patch(kinds.WORKFLOW_RUN, "run", {"status": {"queued": True}},
                                   NAMESPACE, subresource="status")
        one, two = await _next(first), await _next(second)
        assert one.object is two.object and is_frozen(one.object) == enforced()
        assert one.object == again
        mine = await reader.patch(kinds.WORKFLOW_RUN, "run", {"status": {"cleaned": True}},
                                  NAMESPACE, subresource="status")
        three, four = await _next(first), await _next(second)
        assert three.object is four.object
        assert three.object == mine == await writer.get(kinds.WORKFLOW_RUN, "run", NAMESPACE)
        for events in (first, second):
            await events.aclose()


async def test_get_and_list_answer_private_copies(cluster: EmbeddedCluster) -> None:
    await cluster.create(_run())
    got = await cluster.get(kinds.WORKFLOW_RUN, "run", NAMESPACE)
    got["metadata"]["labels"]["team"] = "changed"
    listed = await cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)
    listed.items[0]["spec"] = {}
    again = await cluster.get(kinds.WORKFLOW_RUN, "run", NAMESPACE)
    assert again["metadata"]["labels"] == {"team": "a"}
    assert again["spec"] == {"workflowRef": {"name": "wf"}}


async def test_a_patch_is_checked_against_the_schema_where_it_changed_the_object(
    cluster: EmbeddedCluster,
) -> None:
    await cluster.create(_run())
    await _status_patch(cluster, _stage_status(200))
    for bad, said in (
        ({"s7": {"status": {"phase": "Exploded"}}}, "status.stages.s7.status.phase: Unsupported"),
        ({"s8": {"outputs": [{"value": "v"}]}}, "status.stages.s8.outputs.key: Required value"),
        ({"s9": {"depends": "s1"}}, "status.stages.s9.depends: Invalid value"),
    ):
        with pytest.raises(Invalid, match=said):
            await _status_patch(cluster, {"status": {"stages": bad}})
    good = await _status_patch(cluster, {"status": {"stages": {"s7": {
        "outputs": [{"key": "k", "value": "v"}], "depends": ["s1"]}}}})
    assert good == await _stored(cluster)


async def test_a_part_a_patch_leaves_alone_is_kept_as_stored(cluster: EmbeddedCluster) -> None:
    """Validation ratcheting, as in the apiserver: only what a write changes is checked."""
    await cluster.create(_run())

    def store_unchecked(tx):
        current = tx.get(kinds.WORKFLOW_RUN, NAMESPACE, "run")
        tx.put(kinds.WORKFLOW_RUN, {**current, "status": {"stages": {
            "old": {"status": {"phase": "Retired"}}}}}, current)

    await cluster._write(store_unchecked)
    patched = await _status_patch(cluster, {"status": {"stages": {"new": {"status": {
        "phase": "Running"}}}}})
    assert patched["status"]["stages"]["old"]["status"]["phase"] == "Retired"
    beside = await _status_patch(cluster, {"status": {"stages": {"old": {"status": {
        "reason": "kept"}}}}})
    assert beside["status"]["stages"]["old"]["status"] == {"phase": "Retired", "reason": "kept"}
    with pytest.raises(Invalid, match="Unsupported value"):
        await _status_patch(cluster, {"status": {"stages": {"old": {"status": {
            "phase": "Gone"}}}}})


async def test_a_replace_of_an_answer_edited_in_place_is_still_written(
    cluster: EmbeddedCluster, objects_mode: str,
) -> None:
    """Editing an answer of the store breaks the rule (and raises with read-only objects),
    but the get-edit-replace habit must not lose the write: a replace compares with the
    stored text, not with the kept object the edit changed."""
    created = await cluster.create(_run())
    if objects_mode == "read-only":
        with pytest.raises(TypeError):
            created["metadata"]["labels"]["team"] = "b"
        return
    created["metadata"]["labels"]["team"] = "b"
    replaced = await cluster.replace(created)
    assert replaced["metadata"]["labels"] == {"team": "b"}
    assert (await _stored(cluster))["metadata"]["labels"] == {"team": "b"}
