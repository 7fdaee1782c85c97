"""`cyclone server --admin-token-secret NAME[:KEY]`: the admin token kept in a Secret of
the server's namespace, created by the server when missing (a Helm install creates none),
on the embedded cluster and on a real kube-apiserver; and, from the attacker's side, a
tenant reaches it through no API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.clusters import eventually
from support.control_plane import remote_cluster_on, session_plane

from cyclone.components import ComponentError, ServerOptions, admin_token_of_secret
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.protocol import Cluster
from cyclone.server import create_app
from cyclone.server.admin_secret import (
    AdminSecretError,
    AdminSecretRef,
    read_or_create_admin_token,
    secret_ref,
)

from .chart import REPO

NAME = "cyclone-admin-token"


def _decoded(secret: dict, key: str = "token") -> str:
    return base64.b64decode(secret["data"][key]).decode()


def _digest(token: str) -> str:
    """What assertions compare in place of tokens, so a failure prints no token."""
    return hashlib.sha256(token.encode()).hexdigest()


@contextlib.asynccontextmanager
async def other_client(cluster: Cluster, tmp_path: Path) -> AsyncIterator[Cluster]:
    """A second client of the same cluster, as a second server replica has."""
    if isinstance(cluster, EmbeddedCluster):
        async with EmbeddedCluster(tmp_path / "cluster.db") as second:
            yield second
    else:
        async with remote_cluster_on(session_plane()) as second:
            yield second


async def test_a_missing_secret_is_created_with_a_random_token_and_then_reused(
        cluster, namespace):
    ref = AdminSecretRef(namespace, NAME)
    token = await read_or_create_admin_token(cluster, ref)
    assert len(token) >= 32
    secret = await cluster.get(kinds.SECRET, NAME, namespace)
    assert _digest(_decoded(secret)) == _digest(token)
    assert secret["metadata"]["labels"]["app.kubernetes.io/name"] == "cyclone"
    assert _digest(await read_or_create_admin_token(cluster, ref)) == _digest(token)
    other = AdminSecretRef(namespace, "another-admin-token")
    assert _digest(await read_or_create_admin_token(cluster, other)) != _digest(token)


async def test_an_existing_secret_is_used_as_it_is(cluster, namespace):
    chosen = secrets.token_urlsafe(24)
    await cluster.create({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "mine", "namespace": namespace},
        "data": {"admin": base64.b64encode(f"{chosen}\n".encode()).decode(),
                 "other": base64.b64encode(b"x").decode()}}, namespace=namespace)
    before = await cluster.get(kinds.SECRET, "mine", namespace)
    read = await read_or_create_admin_token(cluster, AdminSecretRef(namespace, "mine", "admin"))
    assert _digest(read) == _digest(chosen)
    after = await cluster.get(kinds.SECRET, "mine", namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_a_secret_without_the_key_is_refused_and_left_alone(cluster, namespace):
    await cluster.create({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": NAME, "namespace": namespace},
        "data": {"other": base64.b64encode(b"not-the-token").decode()}}, namespace=namespace)
    with pytest.raises(AdminSecretError, match="holds no such key") as raised:
        await read_or_create_admin_token(cluster, AdminSecretRef(namespace, NAME))
    if "not-the-token" in str(raised.value):
        pytest.fail("the Secret's value appears in the error")
    secret = await cluster.get(kinds.SECRET, NAME, namespace)
    assert set(secret["data"]) == {"other"}


async def test_replicas_starting_together_agree_on_one_token(cluster, namespace, tmp_path):
    ref = AdminSecretRef(namespace, NAME)
    async with other_client(cluster, tmp_path) as second:
        tokens = await asyncio.gather(*(read_or_create_admin_token(client, ref)
                                        for client in (cluster, second) * 3))
    assert len({_digest(token) for token in tokens}) == 1
    stored = _decoded(await cluster.get(kinds.SECRET, NAME, namespace))
    assert _digest(stored) == _digest(tokens[0])


def test_the_option_names_a_secret_of_the_servers_own_non_tenant_namespace(monkeypatch):
    assert secret_ref("t", "cyclone") == AdminSecretRef("cyclone", "t", "token")
    assert secret_ref("t:admin", "ops") == AdminSecretRef("ops", "t", "admin")
    for bad in ("", ":token", "t:"):
        with pytest.raises(AdminSecretError, match="NAME or NAME:KEY"):
            secret_ref(bad, "cyclone")
    with pytest.raises(AdminSecretError, match="tenant's namespace"):
        secret_ref("t", "cyclone-acme")
    monkeypatch.setenv("POD_NAMESPACE", "cyclone-acme")
    with pytest.raises(ComponentError, match="tenant's namespace"):
        asyncio.run(admin_token_of_secret(None, ServerOptions(admin_token_secret="t")))  # type: ignore[arg-type]
    with pytest.raises(ComponentError, match="not both"):
        asyncio.run(admin_token_of_secret(None, ServerOptions(  # type: ignore[arg-type]
            admin_token_secret="t", admin_token_file="/run/token")))


def test_the_admin_token_variable_beside_the_secret_option_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("POD_NAMESPACE", "cyclone")
    monkeypatch.setenv("CYCLONE_ADMIN_TOKEN", "a-token-that-would-be-ignored")
    with pytest.raises(ComponentError, match="CYCLONE_ADMIN_TOKEN is set together") as raised:
        asyncio.run(admin_token_of_secret(None, ServerOptions(  # type: ignore[arg-type]
            admin_token_secret="t")))
    if "a-token-that-would-be-ignored" in str(raised.value):
        pytest.fail("the admin token appears in the error")
    process = subprocess.run(
        [sys.executable, "-m", "cyclone.cli.main", "server", "--embedded",
         str(tmp_path / "cluster.db"), "--data-dir", str(tmp_path / "data"),
         "--admin-token-secret", NAME],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert process.returncode != 0
    assert "CYCLONE_ADMIN_TOKEN is set together with --admin-token-secret" in process.stderr
    if "a-token-that-would-be-ignored" in process.stdout + process.stderr:
        pytest.fail("the admin token appears in the server's output")


def _api(app, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="http://cyclone.test/apis/v1alpha1",
                             headers={"Authorization": f"Bearer {token}"})


async def test_a_tenant_reaches_the_admin_token_through_no_api(cluster, namespace, tmp_path):
    if not isinstance(cluster, EmbeddedCluster):
        from support.kube_engine import install_crds

        await install_crds(cluster)
    token = await read_or_create_admin_token(cluster, AdminSecretRef(namespace, NAME))
    app = create_app(cluster=cluster, data_dir=tmp_path / "data", admin_token=token,
                     server_url="http://cyclone.test:7099", engine_key_namespace=namespace)
    tenant = f"t{secrets.token_hex(3)}"
    seen: list[str] = []
    async with app.router.lifespan_context(app), _api(app, token) as admin:
        created = await admin.post("/tenants", json={
            "metadata": {"name": tenant},
            "spec": {"persistentVolumeClaim": {"size": "1Gi"},
                     "resourceQuota": {"limits.cpu": "1", "limits.memory": "1Gi"}}})
        assert created.status_code == 201, created.text
        issued = await admin.post(f"/tenants/{tenant}/tokens", json={"description": "t"})
        assert issued.status_code == 201, issued.text
        async with _api(app, issued.json()["token"]) as attacker:
            assert (await attacker.get("/tenants")).status_code == 403
            for path in (f"/integrations/{NAME}", f"/tenants/{tenant}/integrations/{NAME}"):
                response = await attacker.get(path)
                assert response.status_code in (403, 404), (path, response.status_code)
                seen.append(response.text)
            assert (await attacker.post("/projects", json={
                "metadata": {"name": "steal"}})).status_code == 201
            for ref in (f"${{secrets.{namespace}:{NAME}/data.token}}",
                        f"${{secrets.{namespace}:{NAME}/data}}"):
                stage = {"metadata": {"name": f"read{len(seen)}"}, "spec": {"pod": {"spec": {
                    "containers": [{"name": "main", "image": "busybox",
                                    "command": ["sh", "-c", f"echo {ref}"]}]}}}}
                response = await attacker.post("/projects/steal/stages", json=stage)
                assert response.status_code >= 400, response.text
                seen.append(response.text)
    if any(token in text for text in seen):
        pytest.fail("the admin token appears in a response to the tenant")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_the_server_command_creates_the_secret_and_never_prints_the_token(tmp_path):
    namespace = "cyclone"
    port = _free_port()
    async with EmbeddedCluster(tmp_path / "cluster.db") as cluster:
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": namespace}})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cyclone.cli.main", "server", "--embedded",
        str(tmp_path / "cluster.db"), "--data-dir", str(tmp_path / "data"), "--host",
        "127.0.0.1", "--port", str(port), "--admin-token-secret", f"{NAME}:admin",
        "--engine-key-namespace", namespace,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO), "POD_NAMESPACE": namespace})
    token = "unread"
    try:
        async with EmbeddedCluster(tmp_path / "cluster.db") as cluster:
            secret = await eventually(lambda: cluster.get(kinds.SECRET, NAME, namespace),
                                      timeout=60)
        token = _decoded(secret, "admin")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            async def answers() -> httpx.Response:
                return await http.get("/apis/v1alpha1/tenants",
                                      headers={"Authorization": f"Bearer {token}"})

            response = await eventually(answers, timeout=60)
            assert response.status_code == 200, response.text
            refused = await http.get("/apis/v1alpha1/tenants",
                                     headers={"Authorization": "Bearer wrong"})
            assert refused.status_code == 401
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    if token in output.decode():
        pytest.fail("the admin token appears in the server's output")
    assert not (tmp_path / "data" / "admin-token").exists()
