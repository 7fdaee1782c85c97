"""What the run controller keeps between reconciles: each run's `RunBook`, used only for
the run version it matches, and the Stage objects of a sub-graph, looked up again after a
Stage changes."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime

from support.clusters import eventually

from cyclone.engine.controllers.books import RunBooks
from cyclone.engine.controllers.stage_objects import StageObjects
from cyclone.engine.core.dag import DagStage
from cyclone.engine.core.runstate import RunState
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.informer import Informer

from ..harness import API

NOW = datetime(2024, 1, 1, tzinfo=UTC)
NODES = [DagStage("a"), DagStage("b", ("a",)), DagStage("c", ("b",))]
SCOPE = ["a", "b", "c"]


def workflow(version: str = "10") -> dict:
    return {"metadata": {"name": "wf", "namespace": "ns", "uid": "wf-uid",
                         "resourceVersion": version}}


def run(version: str, **phases: str) -> dict:
    return {"metadata": {"name": "r", "namespace": "ns", "uid": "run-uid",
                         "resourceVersion": version},
            "spec": {},
            "status": {"stages": {name: {"status": {"phase": phase}}
                                  for name, phase in phases.items()}}}


def written(state: RunState, version: str) -> dict:
    stored = copy.deepcopy(state.run_with_status())
    stored["metadata"]["resourceVersion"] = version
    return stored


def test_the_book_a_reconcile_wrote_is_taken_up_by_the_next_one_as_it_is():
    books = RunBooks()
    state = RunState(run("1", a="Pending", b="Pending", c="Pending"), NOW)
    book = books.open(state, workflow(), NODES, None, None, SCOPE)
    assert book is not None and book.runnable() == ["a"]
    state.set_stage("a", "Succeeded")
    books.close(state, written(state, "2"))
    next_state = RunState(written(state, "2"), NOW)
    assert books.current(next_state) is book
    assert books.open(next_state, workflow(), NODES, None, None, SCOPE) is book
    assert book.runnable() == ["b"]


def test_a_run_written_elsewhere_is_compared_entry_by_entry():
    books = RunBooks()
    state = RunState(run("1", a="Running", b="Pending", c="Pending"), NOW)
    book = books.open(state, workflow(), NODES, None, None, SCOPE)
    books.close(state, None)
    elsewhere = RunState(run("5", a="Failed", b="Pending", c="Pending"), NOW)
    assert books.current(elsewhere) is None
    assert books.open(elsewhere, workflow(), NODES, None, None, SCOPE) is book
    assert book.blocked() == ["b", "c"] and book.overall_phase() == "Failed"


def test_after_a_failed_write_the_book_follows_the_stored_run_not_the_lost_edits():
    books = RunBooks()
    stored = run("1", a="Running", b="Pending", c="Pending")
    state = RunState(stored, NOW)
    books.open(state, workflow(), NODES, None, None, SCOPE)
    state.set_stage("a", "Succeeded")
    books.close(state, None)
    again = RunState(stored, NOW)
    assert books.current(again) is None
    book = books.open(again, workflow(), NODES, None, None, SCOPE)
    assert book is not None and book.runnable() == [] and book.overall_phase() == "Running"


def test_another_workflow_version_or_range_builds_a_new_book():
    books = RunBooks()
    state = RunState(run("1", a="Pending"), NOW)
    first = books.open(state, workflow("10"), NODES, None, None, SCOPE)
    books.close(state, None)
    state = RunState(run("1", a="Pending"), NOW)
    second = books.open(state, workflow("11"), NODES, None, None, SCOPE)
    books.close(state, None)
    state = RunState(run("1", a="Pending"), NOW)
    third = books.open(state, workflow("11"), NODES, ["b"], None, ["b", "c"])
    assert len({id(first), id(second), id(third)}) == 3
    assert third is not None and third.runnable() == ["b"]


def stage_object(name: str, image: str = "busybox") -> dict:
    return {"apiVersion": API, "kind": "Stage",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"pod": {"spec": {"containers": [{"name": "main", "image": image}]}}}}


async def test_stage_objects_are_looked_up_again_once_a_stage_changes(tmp_path):
    async with EmbeddedCluster(tmp_path / "c.db") as cluster:
        for name in ("a", "b"):
            await cluster.create(stage_object(name))
        informer = Informer(cluster, kinds.STAGE, "default")
        async with asyncio.TaskGroup() as group:
            task = group.create_task(informer.run())
            await informer.wait_synced()
            objects = StageObjects(informer)
            found = objects.lookup("default", "key", ["a", "b"])
            assert list(found.objects) == ["a", "b"] and found.missing == []
            assert objects.lookup("default", "key", ["a", "b"]) is found

            await cluster.delete(kinds.STAGE, "b", "default")
            await eventually(lambda: informer.get("default", "b") is None)
            assert objects.lookup("default", "key", ["a", "b"]).missing == ["b"]

            changed = await cluster.get(kinds.STAGE, "a", "default")
            changed["spec"]["pod"]["spec"]["containers"][0]["image"] = "alpine"
            version = (await cluster.replace(changed))["metadata"]["resourceVersion"]
            await eventually(lambda: informer.get("default", "a")["metadata"][
                "resourceVersion"] == version)
            again = objects.lookup("default", "key", ["a", "b"])
            assert again.objects["a"]["spec"]["pod"]["spec"]["containers"][0]["image"] == (
                "alpine")
            task.cancel()
