"""Tokens bound to one run and the engine key out of every tenant's reach, as the server
checks them: each refusal, and one answer whatever does or does not exist."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cyclone.api import keys
from cyclone.components import ComponentError, ServerOptions, engine_key_namespace
from cyclone.engine import signing as engine_delegation
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.tokens import Purpose, artifact_upload_token, delegation_token
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.server import create_app
from cyclone.server.logs.services import log_and_artifact_routers

from .helpers import ADMIN_TOKEN, create_tenant, make_client, tenant_token

RUNS = "/projects/demo/workflows/ci/workflowruns"
STAGE = {"metadata": {"name": "build"}, "spec": {"pod": {"spec": {"containers": [
    {"name": "main", "image": "busybox", "command": ["true"]}]}}}}


@pytest.fixture
async def server(cluster, tmp_path: Path):
    """The server with its artifact routes."""
    application = create_app(cluster=cluster, data_dir=tmp_path / "server",
                             admin_token=ADMIN_TOKEN, extra_routers=log_and_artifact_routers())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def tenants(server) -> AsyncIterator[tuple]:
    """Clients of tenants `ta` and `tb`, each with the workflow demo/ci."""
    async with make_client(server, ADMIN_TOKEN) as admin:
        clients = []
        for name in ("ta", "tb"):
            await create_tenant(admin, name)
            clients.append(make_client(server, await tenant_token(admin, name)))
    for client in clients:
        await client.__aenter__()
        assert (await client.post("/projects", json={"metadata": {"name": "demo"}})
                ).status_code == 201
        assert (await client.post("/projects/demo/stages", json=STAGE)).status_code == 201
        response = await client.post("/projects/demo/workflows", json={
            "metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
        assert response.status_code == 201, response.text
    try:
        yield tuple(clients)
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)


async def _run(client, cluster, name: str, phase: str = "Running",
               stages: dict | None = None) -> dict:
    response = await client.post(RUNS, json={"metadata": {"name": name}})
    assert response.status_code == 201, response.text
    namespace = response.json()["metadata"]["namespace"]
    run = await cluster.get(kinds.WORKFLOW_RUN, name, namespace)
    run["status"] = {"overall": {"phase": phase}, "stages": stages or {}}
    return await cluster.replace_status(run)


async def _set_phase(cluster, run: dict, phase: str) -> None:
    current = await cluster.get(kinds.WORKFLOW_RUN, run["metadata"]["name"],
                                run["metadata"]["namespace"])
    current["status"]["overall"] = {"phase": phase}
    await cluster.replace_status(current)


async def _upload_token(cluster, tenant: str, run: dict) -> str:
    key = await engine_delegation.token_key(cluster, keys.ENGINE_NAMESPACE,
                                            Purpose.ARTIFACT_UPLOAD)
    return artifact_upload_token(key, tenant, run["metadata"]["uid"])


async def _upload(server, run_name: str, token: str, body: bytes = b"bytes"):
    async with make_client(server) as anonymous:
        return await anonymous.post(f"{RUNS}/{run_name}/artifacts", params={"name": "out.tgz"},
                                    content=body, headers={"X-Upload-Token": token})


# The engine key


async def test_the_engine_key_lives_in_the_engine_namespace_created_on_first_use(cluster):
    await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": keys.SYSTEM_NAMESPACE}})
    legacy = base64.b64encode(b"leaked" * 6).decode()
    await cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": engine_delegation.ENGINE_KEY_SECRET, "namespace": keys.SYSTEM_NAMESPACE},
        "data": {"key": legacy}}, namespace=keys.SYSTEM_NAMESPACE)
    key = await engine_delegation.engine_key(cluster, keys.ENGINE_NAMESPACE)
    assert keys.ENGINE_NAMESPACE == "cyclone"
    await cluster.get(kinds.NAMESPACE, keys.ENGINE_NAMESPACE)
    stored = await cluster.get(kinds.SECRET, engine_delegation.ENGINE_KEY_SECRET,
                               keys.ENGINE_NAMESPACE)
    assert base64.b64decode(stored["data"]["key"]) == key
    assert key != base64.b64decode(legacy)
    with pytest.raises(NotFound):
        await cluster.get(kinds.SECRET, engine_delegation.ENGINE_KEY_SECRET,
                          keys.SYSTEM_NAMESPACE)


async def test_the_engine_and_the_server_share_one_key(cluster, server, tmp_path):
    from cyclone.kube.embedded import EmbeddedCluster

    state = server.state.cyclone
    assert state.engine_key_namespace == EngineConfig().system_namespace
    await engine_delegation.prepare_engine_key(cluster, state.engine_key_namespace)
    async with EmbeddedCluster(tmp_path / "cluster.db") as engine_process:
        assert await engine_delegation.engine_key(engine_process, keys.ENGINE_NAMESPACE) == \
            await engine_delegation.engine_key(cluster, keys.ENGINE_NAMESPACE)


def test_a_tenant_namespace_is_refused_for_the_engine_key():
    assert not keys.is_tenant_namespace(keys.ENGINE_NAMESPACE)
    with pytest.raises(ValueError, match="tenant"):
        EngineConfig(system_namespace=keys.SYSTEM_NAMESPACE)
    with pytest.raises(ComponentError, match="tenant"):
        engine_key_namespace(ServerOptions(engine_key_namespace="cyclone-system"))
    assert engine_key_namespace(ServerOptions()) == keys.ENGINE_NAMESPACE


# Delegation callbacks


async def test_a_delegation_callback_answers_alike_whatever_does_not_exist(
        server, tenants, cluster):
    ta, _ = tenants
    run = await _run(ta, cluster, "r1", "Waiting",
                     {"build": {"status": {"phase": "Waiting"}}})
    key = await engine_delegation.token_key(cluster, keys.ENGINE_NAMESPACE, Purpose.DELEGATION)
    valid = delegation_token(key, run["metadata"]["uid"], "build")
    async with make_client(server) as outside:
        answers = [
            await outside.put(f"/delegations/{ns}/{name}/{stage}",
                              json={"phase": "Succeeded", "token": token})
            for ns, name, stage, token in [
                ("cyclone-ta", "r1", "build", "0" * 64),
                ("cyclone-ta", "ghost", "build", valid),
                ("cyclone-nobody", "r1", "build", valid),
                (keys.ENGINE_NAMESPACE, "r1", "build", valid),
                ("kube-system", "r1", "build", valid),
                ("cyclone-ta", "r1", "deploy", valid),
                ("cyclone-tb", "r1", "build", valid),
            ]]
    assert {(a.status_code, a.text) for a in answers} == {
        (403, answers[0].text)}, [a.text for a in answers]
    assert "r1" not in answers[0].text and "ghost" not in answers[1].text
    stored = await cluster.get(kinds.WORKFLOW_RUN, "r1", "cyclone-ta")
    assert stored["status"]["stages"]["build"]["status"]["phase"] == "Waiting"


async def test_a_delegation_token_dies_with_its_run(server, tenants, cluster):
    ta, _ = tenants
    run = await _run(ta, cluster, "r1", "Waiting", {"build": {"status": {"phase": "Waiting"}}})
    key = await engine_delegation.token_key(cluster, keys.ENGINE_NAMESPACE, Purpose.DELEGATION)
    old = delegation_token(key, run["metadata"]["uid"], "build")
    await _set_phase(cluster, run, "Cancelled")
    async with make_client(server) as outside:
        finished = await outside.put("/delegations/cyclone-ta/r1/build",
                                     json={"phase": "Succeeded", "token": old})
        assert (await ta.delete(f"{RUNS}/r1")).status_code in (200, 204)
        await _remove_finalizers(cluster, "r1", "cyclone-ta")
        await _run(ta, cluster, "r1", "Waiting", {"build": {"status": {"phase": "Waiting"}}})
        recreated = await outside.put("/delegations/cyclone-ta/r1/build",
                                      json={"phase": "Succeeded", "token": old})
    assert finished.status_code == 409, finished.text
    assert recreated.status_code == 403, recreated.text
    stored = await cluster.get(kinds.WORKFLOW_RUN, "r1", "cyclone-ta")
    assert stored["status"]["stages"]["build"]["status"]["phase"] == "Waiting"


async def _remove_finalizers(cluster, name: str, namespace: str) -> None:
    with contextlib.suppress(NotFound):
        await cluster.patch(kinds.WORKFLOW_RUN, name, {"metadata": {"finalizers": None}},
                            namespace)


# Artifact uploads


async def test_the_upload_token_of_a_running_run_uploads_to_it(server, tenants, cluster):
    ta, _ = tenants
    run = await _run(ta, cluster, "r1")
    response = await _upload(server, "r1", await _upload_token(cluster, "ta", run))
    assert response.status_code == 201, response.text
    assert (await ta.get(f"{RUNS}/r1/artifacts/out.tgz")).content == b"bytes"


async def test_an_upload_token_answers_alike_for_every_run_it_was_not_made_for(
        server, tenants, cluster):
    ta, tb = tenants
    a1 = await _run(ta, cluster, "a1")
    await _run(ta, cluster, "a2")
    b1 = await _run(tb, cluster, "b1")
    a1_token = await _upload_token(cluster, "ta", a1)
    b1_token = await _upload_token(cluster, "tb", b1)
    forged_for_a = "cyu.ta." + b1_token.rsplit(".", 1)[1]
    async with make_client(server) as anonymous:
        wrong_workflow = await anonymous.post(
            "/projects/demo/workflows/cd/workflowruns/a1/artifacts",
            params={"name": "out.tgz"}, content=b"x", headers={"X-Upload-Token": a1_token})
    answers = [
        await _upload(server, "a2", a1_token),          # another run of the same tenant
        await _upload(server, "a1", b1_token),          # tb's own token on A's run
        await _upload(server, "a1", forged_for_a),      # tb's digest relabelled as ta's
        await _upload(server, "a1", "cyu.ta." + "0" * 64),
        await _upload(server, "ghost", a1_token),       # no such run
        await _upload(server, "a1", "cyu.nobody." + "0" * 64),
        wrong_workflow,
    ]
    assert {(a.status_code, a.text) for a in answers} == {(401, answers[0].text)}, \
        [a.text for a in answers]
    assert (await ta.get(f"{RUNS}/a1/artifacts")).json()["items"] == []
    assert (await ta.get(f"{RUNS}/a2/artifacts")).json()["items"] == []


async def test_an_upload_token_dies_with_its_run(server, tenants, cluster):
    ta, _ = tenants
    run = await _run(ta, cluster, "r1")
    token = await _upload_token(cluster, "ta", run)
    await _set_phase(cluster, run, "Succeeded")
    finished = await _upload(server, "r1", token)
    assert (await ta.delete(f"{RUNS}/r1")).status_code in (200, 204)
    await _remove_finalizers(cluster, "r1", "cyclone-ta")
    await _run(ta, cluster, "r1")
    recreated = await _upload(server, "r1", token)
    assert (finished.status_code, recreated.status_code) == (401, 401)
    assert (await ta.get(f"{RUNS}/r1/artifacts")).json()["items"] == []


async def test_no_token_sits_in_the_run_a_tenant_reads(server, tenants, cluster):
    ta, _ = tenants
    run = await _run(ta, cluster, "r1", "Waiting", {"build": {"status": {"phase": "Waiting"}}})
    upload = await _upload_token(cluster, "ta", run)
    key = await engine_delegation.token_key(cluster, keys.ENGINE_NAMESPACE, Purpose.DELEGATION)
    delegation = delegation_token(key, run["metadata"]["uid"], "build")
    shown = (await ta.get(f"{RUNS}/r1")).text
    assert upload.rsplit(".", 1)[1] not in shown and delegation not in shown
