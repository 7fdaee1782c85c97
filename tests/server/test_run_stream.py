"""A run followed as server-sent events: the pure change diff, and the stream route on the
embedded cluster and on a real kube-apiserver (the real server under uvicorn beside the
engine)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from engine.harness import BACKENDS
from engine.served import Served, served_env

from cyclone.api import keys
from cyclone.engine.core.phases import is_terminal
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server.run_stream import KEEP_ALIVE, RunTarget, follow_run, run_change, sse_event

RUNNING_STAGE = {"status": {"phase": "Running"}, "pod": {"name": "p1"}}


def run(version: str, stages: dict, **status: object) -> dict:
    return {"metadata": {"name": "r", "resourceVersion": version},
            "status": {"overall": {"phase": "Running"}, "stages": stages, **status}}


def test_a_change_carries_only_the_stages_that_changed():
    before = run("1", {"a": RUNNING_STAGE, "b": {"status": {"phase": "Pending"}}})
    after = run("2", {"a": RUNNING_STAGE, "b": {"status": {"phase": "Running"}}})
    assert run_change(before, after) == {
        "resourceVersion": "2", "status": {"overall": {"phase": "Running"}},
        "stages": {"b": {"status": {"phase": "Running"}}}, "removedStages": []}


def test_a_change_of_the_overall_status_alone_has_no_stages():
    before = run("1", {"a": RUNNING_STAGE})
    after = run("2", {"a": RUNNING_STAGE}, completionTime="2026-01-01T00:00:00Z")
    change = run_change(before, after)
    assert change is not None
    assert change["stages"] == {} and change["removedStages"] == []
    assert change["status"] == {"overall": {"phase": "Running"},
                                "completionTime": "2026-01-01T00:00:00Z"}


def test_stages_gone_from_the_status_are_listed_as_removed():
    change = run_change(run("1", {"a": RUNNING_STAGE, "b": RUNNING_STAGE}),
                        run("2", {"b": RUNNING_STAGE}))
    assert change is not None and change["removedStages"] == ["a"] and change["stages"] == {}


def test_a_new_version_without_a_status_change_is_no_change():
    assert run_change(run("1", {"a": RUNNING_STAGE}), run("2", {"a": RUNNING_STAGE})) is None


def test_the_first_status_of_a_run_is_all_its_stages():
    change = run_change(None, run("2", {"a": RUNNING_STAGE}))
    assert change is not None and change["stages"] == {"a": RUNNING_STAGE}


def test_an_event_is_its_id_name_and_one_line_of_json():
    assert sse_event("change", {"a": "x\ny"}, "42") == (
        'id: 42\nevent: change\ndata: {"a":"x\\ny"}\n\n')
    assert KEEP_ALIVE.startswith(":")


NS = keys.tenant_namespace(keys.DEFAULT_TENANT)


def parse(text: str) -> Event:
    """One event of `follow_run`'s output."""
    if text.startswith(":"):
        return Event("comment")
    fields = dict(line.split(": ", 1) for line in text.strip().splitlines())
    return Event(fields["event"], fields.get("id"), json.loads(fields["data"]))


@pytest.fixture
async def small_cluster(tmp_path) -> AsyncIterator[EmbeddedCluster]:
    """An embedded cluster that keeps only a few changes, so old versions are soon gone."""
    cluster = EmbeddedCluster(tmp_path / "cluster.db", change_log_size=4, poll_interval=0.01)
    await cluster.start()
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    try:
        yield cluster
    finally:
        await cluster.close()


async def stored_run(cluster: EmbeddedCluster, name: str) -> dict:
    return await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"workflowRef": {"name": "wf"}},
        "status": {"overall": {"phase": "Running"},
                   "stages": {"a": {"status": {"phase": "Running"}}}}})


async def set_phase(cluster: EmbeddedCluster, name: str, stage_phase: str,
                    overall: str = "Running") -> dict:
    return await cluster.patch(kinds.WORKFLOW_RUN, name, {"status": {
        "overall": {"phase": overall}, "stages": {"a": {"status": {"phase": stage_phase}}}}},
        NS, subresource="status")


async def test_a_stream_from_a_compacted_version_rereads_the_run_and_goes_on(small_cluster):
    stale = await stored_run(small_cluster, "r")
    await small_cluster.patch(kinds.WORKFLOW_RUN, "r", {"status": {"queued": False}}, NS,
                              subresource="status")
    for index in range(12):
        await small_cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": f"noise-{index}", "namespace": NS}})
    reads: list[str] = []
    for method in ("get", "list"):
        real = getattr(small_cluster, method)

        async def counted(*args, _real=real, _method=method, **kwargs):
            reads.append(_method)
            return await _real(*args, **kwargs)

        setattr(small_cluster, method, counted)
    events = follow_run(RunTarget(small_cluster, NS, "r", lambda obj: True), stale,
                        heartbeat=5)
    async with asyncio.timeout(10):
        assert parse(await anext(events)).name == "snapshot"
        reread = parse(await anext(events))
        assert reread.name == "change" and reread.data["status"]["queued"] is False
        await asyncio.sleep(0.3)
        assert len(reads) == 1, reads
        final = await set_phase(small_cluster, "r", "Succeeded", "Succeeded")
        change = parse(await anext(events))
        assert change.data["stages"] == {"a": {"status": {"phase": "Succeeded"}}}
        end = parse(await anext(events))
    assert (end.name, end.id) == ("end", final["metadata"]["resourceVersion"])
    assert end.data == {"reason": "finished", "phase": "Succeeded"}


async def test_a_stream_ends_when_its_run_is_deleted_or_replaced(small_cluster):
    for replace in (False, True):
        run = await stored_run(small_cluster, "gone")
        events = follow_run(RunTarget(small_cluster, NS, "gone", lambda obj: True), run,
                            last_event_id=run["metadata"]["resourceVersion"], heartbeat=5)
        async with asyncio.timeout(10):
            first = anext(events)
            await small_cluster.delete(kinds.WORKFLOW_RUN, "gone", NS)
            if replace:
                await stored_run(small_cluster, "gone")
            end = parse(await first)
        assert (end.name, end.data) == ("end", {"reason": "deleted"})
        assert [text async for text in events] == []
        if replace:
            await small_cluster.delete(kinds.WORKFLOW_RUN, "gone", NS)


async def test_a_run_replaced_by_one_of_the_same_name_ends_a_stream_resumed_after_it(
        small_cluster):
    stale = await stored_run(small_cluster, "again")
    await small_cluster.delete(kinds.WORKFLOW_RUN, "again", NS)
    await stored_run(small_cluster, "again")
    for index in range(12):
        await small_cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": f"noise-{index}", "namespace": NS}})
    events = follow_run(RunTarget(small_cluster, NS, "again", lambda obj: True), stale,
                        last_event_id=stale["metadata"]["resourceVersion"], heartbeat=5)
    async with asyncio.timeout(10):
        assert [parse(text) async for text in events] == [
            Event("end", stale["metadata"]["resourceVersion"], {"reason": "deleted"})]


class WatchFails:
    """A cluster whose watch fails with an error no cluster should raise."""

    def watch(self, *args, **kwargs):
        raise RuntimeError("the watch broke")


async def test_a_stream_whose_watch_broke_closes_at_its_next_heartbeat(caplog):
    run = {"metadata": {"name": "r", "resourceVersion": "3", "uid": "u"},
           "status": {"overall": {"phase": "Running"}}}
    events = follow_run(RunTarget(WatchFails(), NS, "r", lambda obj: True), run,  # type: ignore[arg-type]
                        heartbeat=0.5)
    async with asyncio.timeout(5):
        assert [parse(text).name async for text in events] == ["snapshot"]
    assert "the watch of workflowrun cyclone-system/r failed" in caplog.text


@dataclass
class Event:
    name: str
    id: str | None = None
    data: dict | None = None


async def events_of(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of an SSE response; a comment line is Event("comment")."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield Event("comment")
        elif not line:
            if fields:
                yield Event(fields.get("event", "message"), fields.get("id"),
                            json.loads(fields["data"]) if fields.get("data") else None)
            fields = {}
        else:
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "embedded")


@pytest.fixture
async def served(tmp_path, backend) -> AsyncIterator[Served]:
    async with served_env(tmp_path, backend) as running:
        yield running


API = "/apis/v1alpha1"


def stage(name: str, script: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"pod": {"spec": {"containers": [
        {"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]}}}}


@pytest.fixture
async def http(served) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API with the admin token."""
    async with httpx.AsyncClient(
            base_url=served.base_url + API, timeout=30,
            headers={"Authorization": f"Bearer {served.admin_token}"}) as client:
        yield client


async def start(http: httpx.AsyncClient, scripts: dict[str, str]) -> str:
    """The run of a new workflow running `scripts` in a chain."""
    assert (await http.post("/projects", json={"metadata": {"name": "sse"}})).status_code == 201
    for name, script in scripts.items():
        answer = await http.post("/projects/sse/stages", json=stage(name, script))
        assert answer.status_code == 201, answer.text
    names = list(scripts)
    answer = await http.post("/projects/sse/workflows", json={
        "metadata": {"name": "wf"},
        "spec": {"stages": [{"name": n, "depends": names[i - 1:i]} for i, n in
                            enumerate(names)]}})
    assert answer.status_code == 201, answer.text
    answer = await http.post(RUNS, json={})
    assert answer.status_code == 201, answer.text
    return answer.json()["metadata"]["name"]


RUNS = "/projects/sse/workflows/wf/workflowruns"


def stream_tasks() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("run-stream-")]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_short_run_streams_its_snapshot_its_changes_and_its_end(http):
    name = await start(http, {"one": "echo one", "two": "echo two"})
    seen: list[Event] = []
    async with http.stream("GET", f"{RUNS}/{name}/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(90):
            async for event in events_of(response):
                if event.name != "comment":
                    seen.append(event)
        final = (await http.get(f"{RUNS}/{name}")).json()
    assert seen[0].name == "snapshot" and seen[0].data["metadata"]["name"] == name
    assert seen[0].id == seen[0].data["metadata"]["resourceVersion"]
    assert seen[-1].name == "end" and seen[-1].data == {"reason": "finished",
                                                        "phase": "Succeeded"}
    changes = [event for event in seen if event.name == "change"]
    assert changes and all(event.id == event.data["resourceVersion"] for event in changes)
    phases = {stage_name: entry["status"]["phase"] for event in changes
              for stage_name, entry in event.data["stages"].items()}
    assert phases == {"one": "Succeeded", "two": "Succeeded"}
    assert is_terminal(changes[-1].data["status"]["overall"]["phase"])
    assert seen[-1].id == changes[-1].id
    assert final["status"]["overall"]["phase"] == "Succeeded"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_resumed_stream_sends_no_second_snapshot_and_keeps_alive(http):
    name = await start(http, {"wait": "sleep 60"})
    async with asyncio.timeout(60):
        while True:
            current = (await http.get(f"{RUNS}/{name}")).json()
            stage_phase = (((current.get("status") or {}).get("stages") or {}).get(
                "wait") or {}).get("status", {}).get("phase")
            if stage_phase == "Running":
                break
            await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    current = (await http.get(f"{RUNS}/{name}")).json()
    version = current["metadata"]["resourceVersion"]
    async with http.stream("GET", f"{RUNS}/{name}/stream", params={"heartbeat": 0.5},
                           headers={"Last-Event-ID": version}) as response:
        assert response.status_code == 200
        events = events_of(response)
        async with asyncio.timeout(10):
            first = await anext(events)
        assert first.name == "comment"
        assert (await http.put(f"{RUNS}/{name}/stop")).status_code == 200
        rest: list[Event] = []
        async with asyncio.timeout(60):
            async for event in events:
                rest.append(event)
    names = [event.name for event in rest if event.name != "comment"]
    assert "snapshot" not in names
    assert names[-1] == "end" and "change" in names
    assert rest[-1].data == {"reason": "finished", "phase": "Cancelled"}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_client_that_goes_away_frees_the_watch_of_its_stream(http):
    name = await start(http, {"wait": "sleep 60"})
    async with http.stream("GET", f"{RUNS}/{name}/stream") as response:
        snapshot = await anext(events_of(response))
        assert snapshot.name == "snapshot"
        assert len(stream_tasks()) == 1
    async with asyncio.timeout(10):
        while stream_tasks():  # noqa: ASYNC110 - the tasks are the server's, in this loop
            await asyncio.sleep(0.05)
    assert (await http.put(f"{RUNS}/{name}/stop")).status_code == 200


async def test_a_stream_of_a_run_that_does_not_exist_is_a_404(served, http):
    await start(http, {"one": "echo one"})
    answer = await http.get(f"{RUNS}/no-such-run/stream")
    assert answer.status_code == 404
    assert answer.json()["message"] == "workflowrun 'no-such-run' not found"

    document = (await served.http.get("/openapi.json")).json()
    route = document["paths"][
        API + "/projects/{project}/workflows/{workflow}/workflowruns/{name}/stream"]["get"]
    assert "text/event-stream" in route["responses"]["200"]["content"]
