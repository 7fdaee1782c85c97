"""The runs list paged at the cluster (`limit` + `continue`): pages of the workflow's runs
in name order that cover every run once across creations and deletions between pages,
label filters, 4xx (never 500) for what needs the whole list and for bad or expired tokens,
and a tenant's token that never reaches another tenant's runs. On the embedded cluster and
a real API server."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.clusters import REAL_CLUSTERS, cluster_params, eventually
from support.control_plane import kube_cluster, session_plane

from cyclone.api import keys
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.protocol import Cluster
from cyclone.server import create_app

from .helpers import ADMIN_TOKEN, create_tenant, make_client, tenant_token

RUNS = "/projects/demo/workflows/ci/workflowruns"
OTHER_RUNS = "/projects/demo/workflows/other/workflowruns"
CHANGE_LOG = 64
STAGE = {"metadata": {"name": "build"}, "spec": {"pod": {
    "spec": {"containers": [{"image": "busybox", "command": ["true"]}]}}}}


@pytest.fixture(params=cluster_params())
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    if request.param in REAL_CLUSTERS:
        from support.kube_engine import install_crds

        async with kube_cluster(tmp_path) as remote:
            await install_crds(remote)
            yield remote
        return
    async with EmbeddedCluster(tmp_path / "cluster.db", change_log_size=CHANGE_LOG) as embedded:
        yield embedded


@pytest.fixture
async def admin(cluster: Cluster, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(cluster=cluster, data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN,
                     server_url="http://cyclone.test:7099")
    async with app.router.lifespan_context(app), make_client(app, ADMIN_TOKEN) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def _new_tenant(admin: httpx.AsyncClient
                      ) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """A new tenant with project `demo` and workflows `ci` and `other`, and its client."""
    name = f"pg{secrets.token_hex(3)}"
    await create_tenant(admin, name)
    app = admin.app  # type: ignore[attr-defined]
    async with make_client(app, await tenant_token(admin, name)) as client:
        await _fill(client)
        yield name, client


@pytest.fixture
async def tenant(admin: httpx.AsyncClient) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async for made in _new_tenant(admin):
        yield made


@pytest.fixture
async def second_tenant(admin: httpx.AsyncClient
                        ) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async for made in _new_tenant(admin):
        yield made


async def _fill(client: httpx.AsyncClient) -> None:
    assert (await client.post("/projects", json={"metadata": {"name": "demo"}})).status_code \
        == 201
    assert (await client.post("/projects/demo/stages", json=STAGE)).status_code == 201
    for workflow in ("ci", "other"):
        created = await client.post("/projects/demo/workflows", json={
            "metadata": {"name": workflow}, "spec": {"stages": [{"name": "build"}]}})
        assert created.status_code == 201, created.text


async def _run(client: httpx.AsyncClient, name: str, path: str = RUNS, **labels: str) -> None:
    created = await client.post(path, json={"metadata": {"name": name, "labels": labels}})
    assert created.status_code == 201, created.text


async def _page(client: httpx.AsyncClient, limit: int, token: str = "", path: str = RUNS,
                **params: str) -> tuple[list[str], str]:
    answer = await client.get(path, params={"limit": limit, "continue": token, **params})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["metadata"]["itemsLength"] == len(body["items"]) <= (limit or 10_000)
    assert "total" not in body["metadata"]
    return [run["metadata"]["name"] for run in body["items"]], body["metadata"]["continue"]


async def _all_pages(client: httpx.AsyncClient, limit: int, between=None, **params: str
                     ) -> list[str]:
    names, token, pages = [], "", 0
    while True:
        page, token = await _page(client, limit, token, **params)
        names.extend(page)
        pages += 1
        if not token:
            return names
        if between is not None:
            await between(pages)


async def test_pages_cover_every_run_of_the_workflow_once_in_name_order(tenant):
    _, client = tenant
    names = [f"run-{i:02d}" for i in range(17)]
    for name in reversed(names):
        await _run(client, name)
    await _run(client, "a-run-of-another-workflow", OTHER_RUNS)

    assert await _all_pages(client, 5) == names
    first, token = await _page(client, 5)
    assert first == names[:5] and token
    whole = (await client.get(RUNS, params={"limit": 5})).json()
    assert whole["metadata"]["total"] == len(names), "the whole list keeps its answer"
    everything, last = await _page(client, 0)
    assert everything == names and last == ""


async def test_runs_created_and_deleted_between_pages_are_never_listed_twice(tenant):
    _, client = tenant
    names = [f"run-{i:02d}" for i in range(15)]
    for name in names:
        await _run(client, name)
    deleted, created = ["run-01", "run-09"], ["run-00a", "run-07a", "run-14a"]

    async def write(pages: int) -> None:
        if pages == 1:
            for name in deleted:
                assert (await client.delete(f"{RUNS}/{name}")).status_code == 204
            for name in created:
                await _run(client, name)

    listed = await _all_pages(client, 4, between=write)
    assert listed == sorted(listed) and len(listed) == len(set(listed)), listed
    stayed = [name for name in names if name not in deleted]
    assert [name for name in listed if name in stayed] == stayed
    assert "run-01" in listed and "run-00a" not in listed


async def test_label_filters_page_at_the_cluster(tenant):
    _, client = tenant
    for i in range(9):
        await _run(client, f"run-{i}", team="blue" if i % 3 == 0 else "red")
    await _run(client, "other-blue", OTHER_RUNS, team="blue")
    blue = await _all_pages(client, 2, filter="team=blue")
    assert blue == ["run-0", "run-3", "run-6"]
    assert await _all_pages(client, 2, filter=f"team=blue,{keys.LABEL_WORKFLOW}=other") \
        == []


@pytest.mark.parametrize("params, said", [
    ({"start": "3"}, "start"),
    ({"sort": "creationTimestamp"}, "sort"),
    ({"sort": "name"}, "descending"),
    ({"filter": "phase=Succeeded"}, "phase"),
    ({"filter": "name=run"}, "name"),
    ({"filter": "spec.timeout=1h"}, "spec.timeout"),
    ({"filter": "team=a b"}, "label"),
])
async def test_what_needs_the_whole_list_is_refused_with_continue(tenant, params, said):
    _, client = tenant
    await _run(client, "run-1")
    refused = await client.get(RUNS, params={"limit": 5, "continue": "", **params})
    assert refused.status_code == 400, refused.text
    assert said in refused.json()["message"]
    whole = await client.get(RUNS, params={"limit": 5, **params})
    assert whole.status_code in (200, 400) and whole.status_code < 500


def _token(fields: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


async def _compact_etcd() -> None:
    endpoint = session_plane().etcd_endpoint
    async with httpx.AsyncClient(base_url=endpoint, timeout=10) as etcd:
        ranged = await etcd.post("/v3/kv/range", json={
            "key": base64.b64encode(b"/registry/").decode()})
        compacted = await etcd.post("/v3/kv/compaction", json={
            "revision": ranged.json()["header"]["revision"], "physical": True})
        assert compacted.status_code == 200, compacted.text


async def test_a_bad_or_expired_token_is_a_clear_4xx(tenant, cluster):
    _, client = tenant
    for i in range(4):
        await _run(client, f"run-{i}")
    for bad in ("garbage", "eyJ2Ijox", _token({"v": "meta.k8s.io/v1", "rv": 1}),
                _token({"v": "meta.k8s.io/v1", "rv": 0, "start": "run-1"})):
        answer = await client.get(RUNS, params={"limit": 2, "continue": bad})
        assert answer.status_code == 400, answer.text
        assert "continue" in answer.json()["message"]
    _, token = await _page(client, 2)
    for round_ in range(2 * CHANGE_LOG):
        updated = await client.put(f"{RUNS}/run-3", json={"metadata": {
            "labels": {"round": str(round_)}}})
        assert updated.status_code == 200, updated.text
    if not isinstance(cluster, EmbeddedCluster):
        await _compact_etcd()

    async def expired() -> bool:
        answer = await client.get(RUNS, params={"limit": 2, "continue": token})
        assert answer.status_code == 410, answer.text
        assert "too old" in answer.json()["message"]
        return True

    await eventually(expired, timeout=10)


async def test_a_tenants_continue_token_never_lists_another_tenants_runs(
        tenant, second_tenant):
    victim, victim_client = tenant
    attacker, hostile = second_tenant
    for i in range(5):
        await _run(victim_client, f"secret-{i}")
    await _run(hostile, "mine")
    _, token = await _page(victim_client, 2)
    assert token
    fields = json.loads(base64.urlsafe_b64decode(token + "=="))
    victim_namespace = keys.tenant_namespace(victim)
    crafted = [_token({**fields, "start": start}) for start in (
        f"../{victim_namespace}/secret-0", f"/../../{victim_namespace}/",
        f"..\\{victim_namespace}", f"{victim_namespace}/secret-0", "\0")]
    for stolen in (token, *crafted):
        answer = await hostile.get(RUNS, params={"limit": 10, "continue": stolen})
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 200:
            runs = answer.json()["items"]
            assert {run["metadata"]["namespace"] for run in runs} <= {
                keys.tenant_namespace(attacker)}
            assert not [run for run in runs if run["metadata"]["name"].startswith("secret")]
    listed, _ = await _page(hostile, 10, _token({**fields, "start": "\0"}))
    assert listed == ["mine"]
