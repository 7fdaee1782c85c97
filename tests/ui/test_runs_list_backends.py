"""The runs list, overview, stats and palette served in process on the embedded cluster and
on a real kube-apiserver: runs of two tenants written to the cluster, each session seeing
only its own tenant's, and the admin seeing another tenant's after switching."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.ui import page_csrf
from support.ui_app import asgi_sign_in

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.protocol import Cluster
from cyclone.server import create_app
from cyclone.ui.app import mount_ui

BACKENDS = ["embedded", pytest.param("kube", marks=pytest.mark.k8s)]
TOKEN = "ui-backends-admin-token"
SYSTEM = keys.SYSTEM_NAMESPACE


@contextlib.asynccontextmanager
async def control_cluster(backend: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    if backend == "kube":
        from support.kube_engine import engine_test_cluster

        async with engine_test_cluster(SYSTEM, keys.tenant_pvc_name(keys.DEFAULT_TENANT)
                                       ) as cluster:
            yield cluster
        return
    from cyclone.kube.embedded import EmbeddedCluster

    cluster = EmbeddedCluster(tmp_path / "cluster.db", name=keys.CONTROL_CLUSTER_NAME)
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.close()


async def write_run(cluster: Cluster, namespace: str, name: str, project: str, phase: str
                    ) -> None:
    await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {keys.LABEL_PROJECT: project, keys.LABEL_WORKFLOW: "build"}},
        "spec": {"workflowRef": {"name": "build"}}})
    await cluster.patch(kinds.WORKFLOW_RUN, name, {"status": {"overall": {
        "phase": phase, "startTime": "2026-01-01T00:00:00Z",
        "lastTransitionTime": "2026-01-01T00:00:05Z"}}}, namespace, subresource="status")


def shown_runs(html: str) -> list[str]:
    return re.findall(r'<tr id="run-[^"]+" data-run="([^"]+)"', html)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_each_session_sees_only_its_tenants_runs_on_both_clusters(
        backend: str, tmp_path: Path) -> None:
    async with control_cluster(backend, tmp_path) as cluster:
        app = create_app(cluster=cluster, data_dir=tmp_path / "server", admin_token=TOKEN,
                         provisioning=False)
        mount_ui(app, TOKEN)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            api = httpx.AsyncClient(transport=transport, base_url="http://ui/apis/v1alpha1",
                                    headers={"Authorization": f"Bearer {TOKEN}"})
            admin = httpx.AsyncClient(transport=transport, base_url="http://ui")
            member = httpx.AsyncClient(transport=transport, base_url="http://ui")
            async with api, admin, member:
                other = f"uib{secrets.token_hex(3)}"
                created = await api.post("/tenants", json={
                    "metadata": {"name": other},
                    "spec": {"persistentVolumeClaim": {"size": "1Gi"}}})
                assert created.status_code == 201, created.text
                token = (await api.post(f"/tenants/{other}/tokens",
                                        json={"description": "ui"})).json()["token"]
                mine = f"sys-{secrets.token_hex(3)}"
                await write_run(cluster, SYSTEM, f"{mine}-ok", "web", "Succeeded")
                await write_run(cluster, SYSTEM, f"{mine}-bad", "web", "Failed")
                await write_run(cluster, keys.tenant_namespace(other), "theirs-1", "secret-proj",
                                "Failed")
                await asgi_sign_in(admin, TOKEN)
                await asgi_sign_in(member, token)

                listed = shown_runs((await admin.get("/runs")).text)
                assert {f"{mine}-ok", f"{mine}-bad"} <= set(listed)
                assert "theirs-1" not in listed
                failed = shown_runs((await admin.get("/runs?phase=Failed&project=web")).text)
                assert f"{mine}-bad" in failed and f"{mine}-ok" not in failed

                for url in ("/runs", "/", "/stats", "/ui/palette?q="):
                    page = await member.get(url)
                    assert page.status_code == 200, url
                    assert mine not in page.text and "web" not in shown_runs(page.text), url
                assert shown_runs((await member.get("/runs")).text) == ["theirs-1"]
                assert "theirs-1" in (await member.get("/")).text
                assert "secret-proj" in (await member.get("/stats")).text
                assert "theirs-1" in (await member.get("/ui/palette?q=theirs")).text

                for url in ("/runs", "/", "/stats", "/ui/palette?q=theirs"):
                    assert "theirs-1" not in (await admin.get(url)).text, url
                csrf = page_csrf((await admin.get("/runs")).text)
                switched = await admin.post("/tenant", data={"tenant": other, "csrf": csrf,
                                                             "next": "/runs"})
                assert switched.status_code == 303, switched.text
                assert shown_runs((await admin.get("/runs")).text) == ["theirs-1"]
