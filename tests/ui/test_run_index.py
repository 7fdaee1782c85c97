"""The pages' run index: ordering, filters, cursor paging, tenant scoping, summaries only,
change notifications and re-list reconciliation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from cyclone.api import keys
from cyclone.api.common import REASON_MANUALLY_PAUSE
from cyclone.engine.core.scm.events import EventType
from cyclone.engine.core.triggerrun import TRIGGER_CRON
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import AlreadyExists
from cyclone.ui.run_index import TRIGGER_KINDS, RunFilter, RunIndex, RunSummary, summarize

NS = keys.tenant_namespace("alpha")
OTHER = keys.tenant_namespace("beta")


def run(name: str, created: str, *, namespace: str = NS, project: str = "p", workflow: str = "w",
        phase: str | None = "Succeeded", trigger: str | None = None, big: bool = False) -> dict:
    status: dict = {"overall": {"phase": phase, "startTime": created}} if phase else {}
    if phase in ("Succeeded", "Failed"):
        status["completionTime"] = created.replace(":00Z", ":30Z")
    if big:
        status["stages"] = {f"s{i}": {"status": {"phase": "Succeeded"}, "outputs": ["x" * 100]}
                            for i in range(200)}
    return {
        "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                     "resourceVersion": "1",
                     "labels": {keys.LABEL_PROJECT: project, keys.LABEL_WORKFLOW: workflow},
                     "annotations": ({keys.ANNOTATION_WORKFLOWRUN_TRIGGER: trigger}
                                     if trigger else {})},
        "spec": {"workflowRef": {"name": workflow}}, "status": status,
    }


def day_runs(count: int, **kwargs) -> list[dict]:
    return [run(f"r{i:03d}", f"2026-11-{1 + i // 24:02d}T{i % 24:02d}:00:00Z", **kwargs)
            for i in range(count)]


def filled(*objects: dict) -> RunIndex:
    index = RunIndex(cluster=None)  # type: ignore[arg-type]
    for obj in objects:
        index.apply("ADDED", obj)
    return index


def names(runs: list[RunSummary]) -> list[str]:
    return [r.name for r in runs]


def test_a_summary_keeps_the_listed_fields_and_not_the_object() -> None:
    summary = summarize(run("big", "2026-11-02T10:00:00Z", trigger=TRIGGER_CRON, big=True))
    assert summary == RunSummary(
        namespace=NS, name="big", project="p", workflow="w", phase="Succeeded",
        created="2026-11-02T10:00:00Z", started="2026-11-02T10:00:00Z",
        finished="2026-11-02T10:00:30Z", trigger="cron", message="", stages=200, version="1")
    assert summary.tenant == "alpha"
    assert not hasattr(summary, "__dict__")


def test_a_run_without_status_or_trigger_is_pending_and_manual() -> None:
    summary = summarize(run("new", "2026-11-02T10:00:00Z", phase=None))
    assert (summary.phase, summary.trigger, summary.finished) == ("Pending", "manual", "")


def test_a_run_is_classified_by_the_trigger_annotation_the_engine_writes() -> None:
    index = filled(
        run("by-hand", "2026-11-01T01:00:00Z"),
        run("nightly", "2026-11-01T02:00:00Z", trigger=TRIGGER_CRON),
        *(run(f"hook-{i}", f"2026-11-01T03:0{i}:00Z", trigger=event.value)
          for i, event in enumerate(EventType)),
    )
    assert TRIGGER_KINDS == ("manual", "cron", "webhook")
    hooks = [f"hook-{i}" for i in range(len(EventType) - 1, -1, -1)]
    shown = {kind: names(index.page(NS, RunFilter(trigger=kind)).runs) for kind in TRIGGER_KINDS}
    assert shown == {"manual": ["by-hand"], "cron": ["nightly"], "webhook": hooks}


def test_a_paused_run_reads_paused_and_is_not_finished() -> None:
    paused = run("held", "2026-11-02T10:00:00Z", phase="Running")
    paused["status"]["overall"]["reason"] = REASON_MANUALLY_PAUSE
    summary = summarize(paused)
    assert (summary.phase, summary.finished) == ("Paused", "")
    index = filled(paused, run("going", "2026-11-02T11:00:00Z", phase="Running"))
    assert names(index.page(NS, RunFilter(phase="Paused")).runs) == ["held"]
    assert names(index.page(NS, RunFilter(phase="Running")).runs) == ["going"]


def test_pages_run_newest_first_with_cursors_both_ways() -> None:
    index = filled(*day_runs(120))
    first = index.page(NS, limit=50)
    assert names(first.runs) == [f"r{i:03d}" for i in range(119, 69, -1)]
    assert first.newer is None and first.older
    second = index.page(NS, limit=50, older=first.older)
    assert names(second.runs) == [f"r{i:03d}" for i in range(69, 19, -1)]
    third = index.page(NS, limit=50, older=second.older)
    assert names(third.runs) == [f"r{i:03d}" for i in range(19, -1, -1)]
    assert third.older is None and third.newer
    back = index.page(NS, limit=50, newer=third.newer)
    assert names(back.runs) == names(second.runs)
    assert index.page(NS, limit=50, newer=back.newer) == first


def test_a_page_that_ends_the_list_has_no_older_cursor() -> None:
    assert filled(*day_runs(50)).page(NS, limit=50).older is None
    index = filled(*day_runs(100))
    assert index.page(NS, limit=50, older=index.page(NS, limit=50).older).older is None


def test_runs_created_in_the_same_second_are_ordered_by_name() -> None:
    index = filled(run("b", "2026-11-01T00:00:00Z"), run("a", "2026-11-01T00:00:00Z"),
                   run("c", "2026-11-01T00:00:00Z"))
    assert names(index.page(NS).runs) == ["c", "b", "a"]
    assert names(index.page(NS, limit=1, older=index.page(NS, limit=1).older).runs) == ["b"]


def test_filters_combine_on_phase_project_workflow_trigger_dates_and_name() -> None:
    index = filled(
        run("build-1", "2026-11-01T08:00:00Z", project="web", workflow="build", phase="Failed"),
        run("build-2", "2026-11-02T08:00:00Z", project="web", workflow="build",
            trigger=TRIGGER_CRON),
        run("deploy-1", "2026-11-02T09:00:00Z", project="web", workflow="deploy"),
        run("lint-1", "2026-11-03T08:00:00Z", project="api", workflow="build", phase="Failed"),
    )

    def shown(**where) -> list[str]:
        return names(index.page(NS, RunFilter(**where)).runs)

    assert shown(phase="Failed") == ["lint-1", "build-1"]
    assert shown(project="web") == ["deploy-1", "build-2", "build-1"]
    assert shown(project="web", workflow="build") == ["build-2", "build-1"]
    assert shown(workflow="build") == ["lint-1", "build-2", "build-1"]
    assert shown(trigger="cron") == ["build-2"]
    assert shown(trigger="manual", project="web") == ["deploy-1", "build-1"]
    assert shown(since=date(2026, 11, 2)) == ["lint-1", "deploy-1", "build-2"]
    assert shown(until=date(2026, 11, 2)) == ["deploy-1", "build-2", "build-1"]
    assert shown(since=date(2026, 11, 2), until=date(2026, 11, 2)) == ["deploy-1", "build-2"]
    assert shown(search="BUILD") == ["build-2", "build-1"]
    assert shown(project="nope") == []


def test_a_filtered_page_pages_by_cursor_within_its_matches() -> None:
    objects = [run(f"r{i:03d}", f"2026-11-01T{i // 60:02d}:{i % 60:02d}:00Z",
                   phase="Failed" if i % 3 == 0 else "Succeeded") for i in range(300)]
    index = filled(*objects)
    where = RunFilter(phase="Failed")
    first = index.page(NS, where, limit=40)
    second = index.page(NS, where, limit=40, older=first.older)
    failed = [f"r{i:03d}" for i in range(297, -1, -3)]
    assert names(first.runs) + names(second.runs) == failed[:80]


def test_a_garbled_cursor_shows_the_first_page() -> None:
    index = filled(*day_runs(5))
    assert index.page(NS, older="%%%") == index.page(NS)
    assert index.page(NS, newer="bm9wZQ") == index.page(NS)


def test_queries_answer_only_for_the_namespace_asked() -> None:
    index = filled(run("mine", "2026-11-01T00:00:00Z"),
                   run("theirs", "2026-11-01T00:00:00Z", namespace=OTHER))
    assert names(index.page(NS).runs) == ["mine"]
    assert names(index.page(OTHER).runs) == ["theirs"]
    assert index.get(NS, "theirs") is None
    assert index.projects(keys.tenant_namespace("nobody")) == []


def test_a_run_moving_phase_keeps_its_place_and_a_deleted_run_leaves() -> None:
    index = filled(*day_runs(3))
    index.apply("MODIFIED", run("r001", "2026-11-01T01:00:00Z", phase="Failed"))
    assert [(r.name, r.phase) for r in index.page(NS).runs] == [
        ("r002", "Succeeded"), ("r001", "Failed"), ("r000", "Succeeded")]
    index.apply("DELETED", run("r001", "2026-11-01T01:00:00Z"))
    assert names(index.page(NS).runs) == ["r002", "r000"]
    assert index.workflows(NS) == [("p", "w")]
    index.apply("DELETED", run("r000", "2026-11-01T00:00:00Z"))
    index.apply("DELETED", run("r002", "2026-11-01T02:00:00Z"))
    assert index.workflows(NS) == [] and index.count(NS) == 0


async def test_subscribers_get_the_changes_of_their_namespace_only() -> None:
    index = filled()
    mine = index.subscribe(NS)
    index.apply("ADDED", run("a", "2026-11-01T00:00:00Z", phase="Running"))
    index.apply("ADDED", run("x", "2026-11-01T00:00:00Z", namespace=OTHER))
    index.apply("MODIFIED", run("a", "2026-11-01T00:00:00Z", phase="Running"))
    index.apply("MODIFIED", run("a", "2026-11-01T00:00:00Z", phase="Succeeded"))
    got = [await asyncio.wait_for(mine.get(), 1) for _ in range(2)]
    assert [(kind, r.name, r.phase) for kind, r in got] == [
        ("ADDED", "a", "Running"), ("MODIFIED", "a", "Succeeded")]
    assert mine.queue.empty()
    mine.close()
    index.apply("DELETED", run("a", "2026-11-01T00:00:00Z"))
    assert mine.queue.empty()


def test_the_first_page_of_ten_thousand_runs_costs_the_page() -> None:
    index = filled(*[run(f"r{i:05d}", f"2026-{1 + i // 900:02d}-{1 + i // 30 % 28:02d}"
                         f"T{i % 24:02d}:{i % 60:02d}:00Z",
                         project=f"p{i % 10}", workflow=f"w{i % 7}") for i in range(10_000)])
    began = time.perf_counter()
    for _ in range(100):
        index.page(NS, limit=50)
        index.page(NS, RunFilter(project="p3", workflow="w4"), limit=50)
    per_page = (time.perf_counter() - began) / 200
    assert per_page < 0.005, per_page


async def wait_for(check, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def namespaces(cluster, *names: str) -> None:
    for name in names:
        with contextlib.suppress(AlreadyExists):
            await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": name}})


async def create_run(cluster, name: str, namespace: str = NS, phase: str | None = None) -> None:
    obj = run(name, "2026-11-01T00:00:00Z", namespace=namespace, phase=None)
    del obj["metadata"]["creationTimestamp"], obj["metadata"]["resourceVersion"]
    await cluster.create(obj)
    if phase:
        await cluster.patch(kinds.WORKFLOW_RUN, name, {"status": {"overall": {"phase": phase}}},
                            namespace, subresource="status")


async def test_the_index_lists_then_watches_the_tenant_namespaces(tmp_path: Path) -> None:
    async with EmbeddedCluster(tmp_path / "c.db") as cluster:
        await namespaces(cluster, NS, "default")
        await create_run(cluster, "before", phase="Running")
        await create_run(cluster, "elsewhere", namespace="default")
        index = RunIndex(cluster)
        try:
            await index.ready()
            assert names(index.page(NS).runs) == ["before"]
            assert index.count("default") == 0
            changes = index.subscribe(NS)
            await create_run(cluster, "after")
            await cluster.patch(kinds.WORKFLOW_RUN, "before",
                                {"status": {"overall": {"phase": "Succeeded"}}}, NS,
                                subresource="status")
            seen = [await asyncio.wait_for(changes.get(), 5) for _ in range(2)]
            assert [(kind, r.name, r.phase) for kind, r in seen] == [
                ("ADDED", "after", "Pending"), ("MODIFIED", "before", "Succeeded")]
        finally:
            await index.stop()


async def test_a_relist_after_gone_reconciles_what_changed_meanwhile(tmp_path: Path) -> None:
    async with EmbeddedCluster(tmp_path / "c.db", change_log_size=4) as cluster:
        await namespaces(cluster, NS, "default")
        for name in ("keep", "gone", "moves"):
            await create_run(cluster, name, phase="Running")
        index = RunIndex(cluster)
        await index.relist()
        stale = index.resource_version
        changes = index.subscribe(NS)
        await cluster.delete(kinds.WORKFLOW_RUN, "gone", NS)
        await cluster.patch(kinds.WORKFLOW_RUN, "moves",
                            {"status": {"overall": {"phase": "Failed"}}}, NS,
                            subresource="status")
        await create_run(cluster, "new")
        for i in range(8):
            await create_run(cluster, f"churn{i}", namespace="default")
        index.resource_version = stale
        try:
            index.start()
            await wait_for(lambda: index.get(NS, "new") is not None)
            assert sorted(names(index.page(NS).runs)) == ["keep", "moves", "new"]
            assert index.get(NS, "moves").phase == "Failed"
            seen = set()
            while not changes.queue.empty():
                kind, summary = changes.queue.get_nowait()
                seen.add((kind, summary.name))
            assert seen == {("DELETED", "gone"), ("MODIFIED", "moves"), ("ADDED", "new")}
        finally:
            await index.stop()


class ClosingWatches:
    """A cluster with no runs whose every watch ends at once, counting the watches."""

    def __init__(self) -> None:
        self.watches = 0

    async def list(self, kind, namespace=None, **_):
        return SimpleNamespace(items=[], resource_version="1")

    async def watch(self, kind, namespace=None, **_):
        self.watches += 1
        await asyncio.sleep(0)
        return
        yield


async def test_a_watch_that_ends_at_once_is_not_made_again_at_once() -> None:
    cluster = ClosingWatches()
    index = RunIndex(cluster, early_end_seconds=0.2)  # type: ignore[arg-type]
    try:
        await index.ready()
        await asyncio.sleep(0.5)
    finally:
        await index.stop()
    assert 2 <= cluster.watches <= 4


@pytest.mark.k8s
async def test_the_index_follows_runs_on_a_real_kube_apiserver() -> None:
    from support.kube_engine import engine_test_cluster

    namespace = keys.tenant_namespace(keys.DEFAULT_TENANT)
    async with engine_test_cluster(namespace, keys.tenant_pvc_name(keys.DEFAULT_TENANT)
                                   ) as cluster:
        await create_run(cluster, "indexed", namespace=namespace, phase="Running")
        index = RunIndex(cluster)
        try:
            await index.ready(within=20)
            assert index.get(namespace, "indexed").phase == "Running"
            changes = index.subscribe(namespace)
            await cluster.patch(kinds.WORKFLOW_RUN, "indexed",
                                {"status": {"overall": {"phase": "Succeeded"}}}, namespace,
                                subresource="status")
            kind, summary = await asyncio.wait_for(changes.get(), 10)
            assert (kind, summary.name, summary.phase) == ("MODIFIED", "indexed", "Succeeded")
        finally:
            await index.stop()
