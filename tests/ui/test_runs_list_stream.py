"""The runs list's and the overview's event streams, computed from a run index fed by hand:
which rows are replaced, the new-runs count, tenant scoping, and a reader that falls
behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from support.sse import COMMENT, parse_sse

from cyclone.api import keys
from cyclone.api.common import REASON_MANUALLY_PAUSE
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app
from cyclone.server.stream_auth import TOKEN_RECHECK_SECONDS, AllowedEvery
from cyclone.ui.app import mount_ui
from cyclone.ui.pages.browse import list_events
from cyclone.ui.pages.overview import running_events, running_now
from cyclone.ui.run_index import RunFilter, RunIndex, run_index

NS = keys.tenant_namespace("alpha")


def run(name: str, created: str, phase: str = "Running", workflow: str = "w",
        namespace: str = NS) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                         "labels": {keys.LABEL_PROJECT: "p", keys.LABEL_WORKFLOW: workflow}},
            "status": {"overall": {"phase": phase, "startTime": created}}}


async def events(stream: AsyncIterator[str], count: int) -> list[tuple[str, str]]:
    """The next `count` events as (name, data), comments skipped."""
    got = []
    while len(got) < count:
        chunk = await asyncio.wait_for(anext(stream), 2)
        got.extend((event.name, event.data) for event in parse_sse(chunk)
                   if event.name != COMMENT)
    return got


async def test_rows_are_replaced_and_new_matching_runs_counted() -> None:
    index = RunIndex(cluster=None)  # type: ignore[arg-type]
    index.apply("ADDED", run("old", "2026-11-01T00:00:00Z"))
    stream = list_events(index, NS, RunFilter(phase="Running", workflow="w"),
                         ("2026-11-01T00:00:00Z", "old"), "/runs?phase=Running")
    assert await anext(stream) == ": connected\n\n"
    index.apply("MODIFIED", run("old", "2026-11-01T00:00:00Z", phase="Succeeded"))
    index.apply("ADDED", run("other-workflow", "2026-11-02T00:00:00Z", workflow="x"))
    index.apply("ADDED", run("elsewhere", "2026-11-02T00:00:00Z", namespace="cyclone-beta"))
    index.apply("ADDED", run("new1", "2026-11-02T00:00:00Z"))
    index.apply("MODIFIED", run("new1", "2026-11-02T00:00:00Z", phase="Waiting"))
    index.apply("ADDED", run("new2", "2026-11-02T00:00:01Z"))
    index.apply("DELETED", run("new2", "2026-11-02T00:00:01Z"))
    got = await events(stream, 7)
    assert [name for name, _ in got] == ["run-old", "run-new1", "new-runs", "run-new1",
                                         "run-new2", "new-runs", "run-new2"]
    assert 'data-run="old"' in got[0][1] and 'data-phase="Succeeded"' in got[0][1]
    assert "1 new run — show" in got[2][1] and 'href="/runs?phase=Running"' in got[2][1]
    assert "2 new runs — show" in got[5][1]
    assert 'data-phase="Waiting"' in got[3][1] and got[6][1] == ""
    await stream.aclose()
    assert index._subscribers == {}


async def test_a_reader_that_falls_behind_is_told_to_reload() -> None:
    index = RunIndex(cluster=None)  # type: ignore[arg-type]
    original = index.subscribe
    index.subscribe = lambda namespace: original(namespace, limit=2)  # type: ignore[method-assign]
    stream = list_events(index, NS, RunFilter(), None, "/runs")
    await anext(stream)
    for i in range(5):
        index.apply("ADDED", run(f"r{i}", f"2026-11-02T00:00:0{i}Z"))
    got = await events(stream, 2)
    assert got[0][0] == "new-runs" and "reload" in got[0][1]
    await stream.aclose()


async def test_the_overview_stream_sends_running_now_once_per_burst() -> None:
    index = RunIndex(cluster=None)  # type: ignore[arg-type]
    stream = running_events(index, NS, keep_alive=0.2)
    await anext(stream)
    index.apply("ADDED", run("a", "2026-11-02T00:00:00Z"))
    index.apply("ADDED", run("b", "2026-11-02T00:00:01Z", phase="Waiting"))
    index.apply("ADDED", run("c", "2026-11-02T00:00:02Z", phase="Succeeded"))
    (name, html), = await events(stream, 1)
    assert name == "running"
    assert html.index('data-run="b"') < html.index('data-run="a"') and 'data-run="c"' not in html
    assert await anext(stream) == ": keep-alive\n\n"
    index.apply("MODIFIED", run("a", "2026-11-02T00:00:00Z", phase="Failed"))
    index.apply("MODIFIED", run("b", "2026-11-02T00:00:01Z", phase="Succeeded"))
    (_, html), = await events(stream, 1)
    assert "Nothing is running." in html
    await stream.aclose()


async def test_the_server_stops_its_run_index_when_it_shuts_down(tmp_path: Path) -> None:
    cluster = EmbeddedCluster(tmp_path / "c.db", name=keys.CONTROL_CLUSTER_NAME)
    await cluster.start()
    try:
        app = create_app(cluster=cluster, data_dir=tmp_path / "server", admin_token="t" * 20)
        mount_ui(app, "t" * 20)
        async with app.router.lifespan_context(app):
            index = run_index(app.state.cyclone)
            await index.ready()
            task = index._task
            assert task is not None and not task.done()
        assert task.done() and index._task is None
    finally:
        await cluster.close()



class Revocable:
    """A session token's standing: allowed until revoked, counting the checks."""

    def __init__(self) -> None:
        self.revoked = False
        self.checks = 0

    async def __call__(self) -> bool:
        self.checks += 1
        return not self.revoked


async def rest_of(stream: AsyncIterator[str], within: float = 2) -> list[str]:
    async with asyncio.timeout(within):
        return [chunk async for chunk in stream]


async def test_both_streams_end_at_the_keep_alive_after_the_token_is_revoked() -> None:
    index = RunIndex(cluster=None)  # type: ignore[arg-type]
    for make in (lambda allowed: list_events(index, NS, RunFilter(), None, "/runs",
                                             keep_alive=0.2, still_allowed=allowed),
                 lambda allowed: running_events(index, NS, keep_alive=0.2,
                                                still_allowed=allowed)):
        token = Revocable()
        stream = make(token)
        assert await anext(stream) == ": connected\n\n"
        assert await anext(stream) == ": keep-alive\n\n"
        token.revoked = True
        assert await rest_of(stream) == []
        assert index._subscribers == {}


async def test_both_streams_end_after_revocation_while_changes_keep_coming() -> None:
    index = RunIndex(cluster=None)  # type: ignore[arg-type]
    for make in (lambda allowed: list_events(index, NS, RunFilter(), None, "/runs",
                                             keep_alive=0.3, still_allowed=allowed),
                 lambda allowed: running_events(index, NS, keep_alive=0.3,
                                                still_allowed=allowed)):
        token = Revocable()
        stream = make(token)
        await anext(stream)
        token.revoked = True

        async def churn() -> None:
            for i in range(40):
                index.apply("ADDED", run(f"c{i}", f"2026-11-02T00:00:{i:02d}Z"))
                await asyncio.sleep(0.05)

        feeding = asyncio.create_task(churn())
        try:
            sent = await rest_of(stream)
        finally:
            feeding.cancel()
        assert ": keep-alive\n\n" not in sent and token.checks == 1
        for i in range(40):
            index.apply("DELETED", run(f"c{i}", f"2026-11-02T00:00:{i:02d}Z"))


def test_a_paused_run_is_listed_under_running_now() -> None:
    index = RunIndex(cluster=None)  # type: ignore[arg-type]
    held = run("held", "2026-11-02T00:00:01Z")
    held["status"]["overall"]["reason"] = REASON_MANUALLY_PAUSE
    index.apply("ADDED", held)
    index.apply("ADDED", run("going", "2026-11-02T00:00:00Z"))
    index.apply("ADDED", run("done", "2026-11-02T00:00:02Z", phase="Succeeded"))
    assert [(r.name, r.phase) for r in running_now(index, NS)] == [
        ("held", "Paused"), ("going", "Running")]


async def test_a_long_keep_alive_still_rechecks_the_token_every_fifteen_seconds() -> None:
    assert AllowedEvery(Revocable(), 300).interval == TOKEN_RECHECK_SECONDS == 15
    assert AllowedEvery(Revocable(), 0.5).interval == 0.5


def test_a_run_added_in_the_same_second_as_the_newest_shown_is_new_whatever_its_name() -> None:
    from cyclone.ui.pages.browse import is_new_run
    from cyclone.ui.run_listing import summarize

    top = ("2026-11-02T00:00:05Z", "slow-m")
    same_second = summarize(run("slow-a", "2026-11-02T00:00:05Z"))
    assert is_new_run("ADDED", same_second, top)
    assert not is_new_run("MODIFIED", same_second, top)
    assert not is_new_run("ADDED", summarize(run("slow-m", "2026-11-02T00:00:05Z")), top)
    assert not is_new_run("ADDED", summarize(run("old", "2026-11-02T00:00:04Z")), top)
    assert is_new_run("MODIFIED", summarize(run("later", "2026-11-02T00:00:06Z")), top)
    assert not is_new_run("DELETED", summarize(run("later", "2026-11-02T00:00:06Z")), top)
