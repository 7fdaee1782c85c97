"""A run whose stage entries are stored in WorkflowRunStages chunks reads through the API as
any run does: GET fills in `status.stages`, the run stream shows its stages moving, and a
tenant can neither write a chunk nor read another tenant's run through it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from engine.harness import BACKENDS, NAMESPACE
from engine.served import Served, served_env

from cyclone.api import keys, stagechunks
from cyclone.kube import kinds

from .helpers import create_tenant, tenant_token
from .test_run_stream import Event, events_of

pytestmark = pytest.mark.timeout(240)

API = "/apis/v1alpha1"
STAGES = 12
THRESHOLD = 4
RUNS = "/projects/big/workflows/{workflow}/workflowruns"


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "embedded")


@pytest.fixture
async def served(tmp_path, backend, monkeypatch) -> AsyncIterator[Served]:
    monkeypatch.setenv("CYCLONE_STAGE_CHUNK_THRESHOLD", str(THRESHOLD))
    async with served_env(tmp_path, backend) as running:
        yield running


@pytest.fixture
async def http(served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
            base_url=served.base_url + API, timeout=30,
            headers={"Authorization": f"Bearer {served.admin_token}"}) as client:
        yield client


async def make_workflow(http: httpx.AsyncClient, name: str, count: int) -> None:
    """A workflow of ``count`` quick stages, each after the one four places before it."""
    for i in range(count):
        answer = await http.post("/projects/big/stages", json={
            "metadata": {"name": f"{name}-s{i}"}, "spec": {"pod": {"spec": {"containers": [
                {"name": "main", "image": "busybox", "command": ["true"]}]}}}})
        assert answer.status_code == 201, answer.text
    answer = await http.post("/projects/big/workflows", json={
        "metadata": {"name": name}, "spec": {"stages": [
            {"name": f"{name}-s{i}", **({"depends": [f"{name}-s{i - 4}"]} if i >= 4 else {})}
            for i in range(count)]}})
    assert answer.status_code == 201, answer.text


async def start_run(http: httpx.AsyncClient, workflow: str) -> str:
    answer = await http.post(RUNS.format(workflow=workflow), json={})
    assert answer.status_code == 201, answer.text
    return answer.json()["metadata"]["name"]


async def followed(http: httpx.AsyncClient, workflow: str, name: str) -> list[Event]:
    seen: list[Event] = []
    async with http.stream("GET", f"{RUNS.format(workflow=workflow)}/{name}/stream") as answer:
        assert answer.status_code == 200
        async with asyncio.timeout(180):
            async for event in events_of(answer):
                if event.name != "comment":
                    seen.append(event)
    return seen


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_chunked_run_reads_and_streams_as_any_run(served, http):
    assert (await http.post("/projects", json={"metadata": {"name": "big"}})).status_code == 201
    await make_workflow(http, "wide", STAGES)
    await make_workflow(http, "narrow", THRESHOLD)
    wide = await start_run(http, "wide")
    seen = await followed(http, "wide", wide)
    narrow = await start_run(http, "narrow")
    await followed(http, "narrow", narrow)

    stored = await served.env.cluster.get(kinds.WORKFLOW_RUN, wide, NAMESPACE)
    assert not stored["status"].get("stages")
    assert stored["status"][stagechunks.COUNTS_FIELD] == {"Succeeded": STAGES}

    run = (await http.get(f"{RUNS.format(workflow='wide')}/{wide}")).json()
    small = (await http.get(f"{RUNS.format(workflow='narrow')}/{narrow}")).json()
    assert sorted(run["status"]["stages"]) == sorted(f"wide-s{i}" for i in range(STAGES))
    assert "stageChunks" not in small["status"]
    for name, entry in run["status"]["stages"].items():
        twin = small["status"]["stages"][name.replace("wide", "narrow")
                                          if name in {f"wide-s{i}" for i in range(THRESHOLD)}
                                          else "narrow-s0"]
        assert set(entry) == set(twin), "an entry has the shape of a small run's entry"
        assert entry["status"]["phase"] == "Succeeded"
    assert run["status"]["stages"]["wide-s6"]["depends"] == ["wide-s2"]

    assert seen[0].name == "snapshot" and seen[-1].name == "end"
    assert seen[-1].data == {"reason": "finished", "phase": "Succeeded"}
    phases: dict[str, list[str]] = {}
    for event in seen:
        if event.name == "change":
            for stage, entry in event.data["stages"].items():
                phases.setdefault(stage, []).append((entry.get("status") or {}).get("phase"))
    assert sorted(phases) == sorted(run["status"]["stages"]), "every stage moved in the stream"
    assert all(moves[-1] == "Succeeded" for moves in phases.values()), phases
    assert any(len(moves) > 1 for moves in phases.values()), "stages are seen on their way"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_tenant_cannot_write_chunks_nor_read_another_tenants(served, http):
    assert (await http.post("/projects", json={"metadata": {"name": "big"}})).status_code == 201
    await make_workflow(http, "wide", STAGES // 2)
    wide = await start_run(http, "wide")
    await followed(http, "wide", wide)
    chunk = stagechunks.chunk_name(wide, 0)

    other_tenant = f"other-{secrets.token_hex(3)}"
    await create_tenant(http, other_tenant)
    token = await tenant_token(http, other_tenant)
    async with httpx.AsyncClient(base_url=served.base_url + API, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as other:
        run_path = f"{RUNS.format(workflow='wide')}/{wide}"
        assert (await other.get(run_path)).status_code == 404
        assert (await other.get(f"{run_path}/stream")).status_code == 404
        body = {"apiVersion": keys.API_VERSION, "kind": "WorkflowRunStages",
                "metadata": {"name": chunk}, "spec": {"run": wide, "index": 0},
                "status": {"stages": {}}}
        for method, path in (("POST", "/workflowrunstages"),
                             ("POST", "/projects/big/workflowrunstages"),
                             ("PUT", f"/projects/big/workflowrunstages/{chunk}"),
                             ("PATCH", f"/workflowrunstages/{chunk}"),
                             ("DELETE", f"/workflowrunstages/{chunk}"),
                             ("GET", f"/workflowrunstages/{chunk}")):
            answer = await other.request(method, path, json=body)
            assert answer.status_code in (404, 405), (method, path, answer.status_code)

    held = await served.env.cluster.get(kinds.WORKFLOW_RUN_STAGES, chunk, NAMESPACE)
    assert stagechunks.belongs_to(held, await served.env.cluster.get(
        kinds.WORKFLOW_RUN, wide, NAMESPACE))
