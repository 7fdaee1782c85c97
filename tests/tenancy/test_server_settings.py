"""The v1.2 server settings against a live `cyclone up`, on the embedded cluster and on a
real kube-apiserver: a new tenant gets the control cluster opened for it with the default
PVC and quota, runs there, every finished run reaches the notification endpoint with the
link the web URL template makes, and an admin reads the effective settings. The kube
variant runs on the tenancy stacks' plane."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from engine.receiver import http_receiver
from support.sandboxes import kill_containers_under
from typer.testing import CliRunner

from cyclone.api import keys
from cyclone.cli.main import app
from cyclone.engine.core.weburl import ANNOTATION_WEB_URL
from cyclone.kube import kinds
from cyclone.kube.protocol import Cluster

from .flows import apply_flow, expect, shell_stage, start_run, wait_run

BACKENDS = ["embedded", pytest.param("kube", marks=pytest.mark.k8s)]
TEMPLATE = "https://ci.example.com/t/{tenant}/{project}/{workflow}/{run}"
QUOTA = {"limits.cpu": "2", "limits.memory": "2Gi", "requests.cpu": "1",
         "requests.memory": "1Gi"}


@contextlib.asynccontextmanager
async def _up(backend: str, tmp_path: Path, monkeypatch, plane, **settings
              ) -> AsyncIterator[tuple[httpx.AsyncClient, Cluster]]:
    from support.up import cyclone_up

    data_dir = tmp_path / "up"
    async with contextlib.AsyncExitStack() as exits:
        if backend == "embedded":
            from cyclone.kube.embedded import EmbeddedCluster

            admin = await exits.enter_async_context(
                cyclone_up(data_dir, monkeypatch, **settings))
            cluster: Cluster = await exits.enter_async_context(
                EmbeddedCluster(data_dir / "cluster.db"))
        else:
            from support.control_plane import remote_cluster_on
            from support.kube_engine import install_crds, running_node

            from cyclone.node.runtimes.host import HostRuntime
            from cyclone.resolvers import resolver_image_overlays

            cluster = await exits.enter_async_context(remote_cluster_on(plane))
            await install_crds(cluster)
            await exits.enter_async_context(running_node(
                cluster, f"settings-{secrets.token_hex(3)}", tmp_path / "node",
                HostRuntime(image_overlays=resolver_image_overlays())))
            admin = await exits.enter_async_context(
                cyclone_up(data_dir, monkeypatch, plane.kubeconfig, **settings))
        yield admin, cluster


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_new_tenant_runs_in_the_opened_control_cluster_and_runs_reach_the_endpoint(
        backend, tmp_path, monkeypatch, request):
    plane = request.getfixturevalue("tenancy_plane") if backend == "kube" else None
    try:
        async with http_receiver() as audit, _up(
                backend, tmp_path, monkeypatch, plane, open_control_cluster=True,
                default_pvc_size="2Gi", default_storage_class="",
                default_quota=",".join(f"{k}={v}" for k, v in QUOTA.items()),
                web_url_template=TEMPLATE,
                notification_endpoints=(f"audit={audit.url}",)) as (admin, cluster):
            settings = expect(await admin.get("/settings"), 200)
            assert settings == {
                "openControlCluster": True,
                "defaultPersistentVolumeClaim": {"size": "2Gi", "storageClass": ""},
                "defaultResourceQuota": QUOTA, "webURLTemplate": TEMPLATE,
                "notificationEndpoints": ["audit"]}
            assert audit.url not in str(settings)
            root = str(admin.base_url).rstrip("/").removesuffix("/apis/v1alpha1")
            async with httpx.AsyncClient() as plain:
                document = (await plain.get(f"{root}/openapi.json")).json()
            assert "get" in document["paths"]["/apis/v1alpha1/settings"]
            admin_token = admin.headers["Authorization"].removeprefix("Bearer ")
            shown = await asyncio.to_thread(CliRunner().invoke, app, [
                "--server", root, "--token", admin_token, "settings", "-o", "json"])
            assert shown.exit_code == 0 and json.loads(shown.stdout) == settings
            table = await asyncio.to_thread(CliRunner().invoke, app, [
                "--server", root, "--token", admin_token, "settings"])
            assert f"webURLTemplate                              {TEMPLATE}" in table.stdout

            tenant = f"st{secrets.token_hex(3)}"
            created = expect(await admin.post("/tenants", json={"metadata": {"name": tenant}}),
                             201)
            assert created["spec"]["persistentVolumeClaim"] == {"storageClass": "",
                                                                "size": "2Gi"}
            assert created["spec"]["resourceQuota"] == QUOTA
            token = expect(await admin.post(f"/tenants/{tenant}/tokens", json={}), 201)["token"]
            base = str(admin.base_url)
            async with httpx.AsyncClient(base_url=base, timeout=30, headers={
                    "Authorization": f"Bearer {token}"}) as http:
                assert (await http.get("/settings")).status_code == 403
                [integration] = expect(await http.get("/integrations"), 200)["items"]
                assert integration["metadata"]["name"] == keys.CONTROL_CLUSTER_NAME
                assert integration["spec"]["cluster"]["isWorkerCluster"] is True
                namespace = keys.tenant_namespace(tenant)
                quota = await cluster.get(kinds.RESOURCE_QUOTA, f"cyclone-quota-{tenant}",
                                          namespace)
                assert quota["spec"]["hard"] == QUOTA
                claim = await cluster.get(kinds.PERSISTENT_VOLUME_CLAIM,
                                          keys.tenant_pvc_name(tenant), namespace)
                assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"

                await apply_flow(http, "web", "ci", [shell_stage("hello", "echo hi")])
                run = start_run(http, "web", "ci")
                name = (await run)["metadata"]["name"]
                finished = await wait_run(http, "web", "ci", name)
                assert finished["status"]["overall"]["phase"] == "Succeeded", finished
                [body] = await _received_from(audit, namespace)

                expect(await http.put(
                    f"/integrations/{keys.CONTROL_CLUSTER_NAME}/closecluster"), 200)
                closed = await start_run(http, "web", "ci")
                refused = await wait_run(http, "web", "ci", closed["metadata"]["name"])
                overall = refused["status"]["overall"]
                assert overall["phase"] == "Failed"
                assert f"tenant {tenant!r} has opened no cluster" in overall["message"]
            assert (await admin.delete(f"/tenants/{tenant}")).status_code == 204
            record = await cluster.get(kinds.EXECUTION_CLUSTER, keys.CONTROL_CLUSTER_NAME)
            assert not any(tenant in key for key in record["metadata"].get("labels") or {})
    finally:
        kill_containers_under(tmp_path)
    assert body["metadata"]["name"] == name
    assert body["metadata"]["annotations"][ANNOTATION_WEB_URL] == \
        f"https://ci.example.com/t/{tenant}/web/ci/{name}"
    for _, sent in audit.raw:
        assert token not in sent.decode() and token.split(".")[-1] not in sent.decode()


async def _received_from(audit, namespace: str, within: float = 30.0) -> list[dict]:
    """The bodies the endpoint got for runs of ``namespace``, once there is one. On a
    shared real control plane the endpoint also gets the finished runs other tests left
    there: a server-wide endpoint is sent every finished run not yet sent to it."""
    def ours() -> list[dict]:
        return [b for b in audit.bodies if b["metadata"]["namespace"] == namespace]

    async with asyncio.timeout(within):
        while not ours():
            await audit.wait_for(len(audit.bodies) + 1, within=within)
    return ours()
