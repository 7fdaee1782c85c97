"""The cache cleaning pod is a GC pod of the server's settings: it runs the engine's GC image
and resources (a mirror of images, a quota that demands limits), its task's phase is the
pod's, and asking again once it has ended replaces the finished pod. On the embedded cluster
and a real API server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.clusters import CLUSTER_FACTORIES, REAL_CLUSTERS, cluster_params

from cyclone.api import keys
from cyclone.engine.core.serversettings import ServerSettings
from cyclone.kube import kinds
from cyclone.server import create_app

from .helpers import ADMIN_TOKEN, create_tenant, make_client, tenant_token

MIRROR = "registry.mirror.example/library/busybox:1.36"
RESOURCES = {"requests": {"cpu": "20m", "memory": "16Mi"},
             "limits": {"cpu": "100m", "memory": "64Mi"}}


@pytest.fixture(params=cluster_params())
async def tenant(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, object, str]]:
    """(a client of a new tenant that opened the control cluster, the cluster, the
    tenant's workload namespace) of a server told the engine's GC image and resources."""
    async with CLUSTER_FACTORIES[request.param](tmp_path) as cluster:
        if request.param in REAL_CLUSTERS:
            from support.kube_engine import install_crds

            await install_crds(cluster)  # type: ignore[arg-type]
        app = create_app(cluster=cluster, data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN,
                         server_url="http://cyclone.test:7099",
                         server_settings=ServerSettings(gc_image=MIRROR,
                                                        gc_resources=RESOURCES))
        name = f"cc{secrets.token_hex(3)}"
        async with app.router.lifespan_context(app), make_client(app, ADMIN_TOKEN) as admin:
            await create_tenant(admin, name)
            async with make_client(app, await tenant_token(admin, name)) as client:
                assert (await client.post("/integrations", json={
                    "metadata": {"name": "cluster"}, "spec": {"type": "Cluster", "cluster": {
                        "isControlCluster": True}}})).status_code == 201
                opened = await client.put("/integrations/cluster/opencluster")
                assert opened.status_code == 200, opened.text
                assert (await client.post("/projects", json={
                    "metadata": {"name": "p"}})).status_code == 201
                yield client, cluster, f"{keys.tenant_namespace(name)}-worker"


async def test_the_cleaning_pod_runs_the_gc_image_and_a_finished_one_is_replaced(tenant):
    client, cluster, namespace = tenant
    created = await client.post("/projects/p/cleancachetasks")
    assert created.status_code == 202, created.text
    pod = await cluster.get(kinds.POD, "cachegc--p", namespace)
    (container,) = pod["spec"]["containers"]
    assert (container["image"], container["resources"]) == (MIRROR, RESOURCES)
    task = await client.get("/projects/p/cleancachetasks/cachegc--p")
    assert task.status_code == 200 and task.json()["phase"] == "Pending", task.text

    await cluster.patch(kinds.POD, "cachegc--p", {"status": {"phase": "Succeeded"}},
                        namespace, subresource="status")
    ended = await client.get("/projects/p/cleancachetasks/cachegc--p")
    assert ended.json()["phase"] == "Succeeded", ended.text
    again = await client.post("/projects/p/cleancachetasks")
    assert again.status_code == 202 and again.json()["phase"] == "Pending", again.text
    replaced = await cluster.get(kinds.POD, "cachegc--p", namespace)
    assert replaced["metadata"]["uid"] != pod["metadata"]["uid"]
    assert replaced["spec"]["containers"][0]["image"] == MIRROR


def test_cyclone_up_gives_the_server_the_engines_gc_image_and_resources():
    from cyclone.engine.config import EngineConfig
    from cyclone.up import UpOptions, up_server_settings

    settings = up_server_settings(UpOptions(), EngineConfig(gc_image=MIRROR,
                                                            gc_resources=RESOURCES))
    assert (settings.gc_image, settings.gc_resources) == (MIRROR, RESOURCES)


@pytest.mark.parametrize("given", [["--gc-image", MIRROR], []])
def test_cyclone_server_takes_the_gc_image_from_its_option_or_environment(
        monkeypatch, given):
    import typer.main

    from cyclone.cli.main import app
    from cyclone.components import server_settings

    monkeypatch.setenv("CYCLONE_GC_IMAGE", "" if given else MIRROR)
    command = typer.main.get_command(app).commands["server"]  # type: ignore[attr-defined]
    params = command.make_context("server", list(given)).params
    assert server_settings(type("Options", (), params)()).gc_image == MIRROR
