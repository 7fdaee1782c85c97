from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from cyclone.server.artifacts import (
    ARTIFACT_RETENTION_KEY,
    ArtifactStore,
    artifact_store_for,
    artifact_upload_token,
)
from cyclone.server.logs.store import RunRef
from logs.serving import DEVOPS, OTHER, build_app

ARTIFACTS = "/apis/v1alpha1/projects/proj/workflows/wf/workflowruns/wf-run1/artifacts"
RUN = RunRef("devops", "proj", "wf", "wf-run1")


def auth(token: str = DEVOPS) -> dict:
    return {"Authorization": f"Bearer {token}"}


def tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"binary output"
        info = tarfile.TarInfo("out/app")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_upload_list_download_delete(tmp_path) -> None:
    app = build_app(tmp_path)
    body = tarball()
    async with client_for(app) as client:
        uploaded = await client.post(f"{ARTIFACTS}/app.tar.gz", params={"stage": "build"},
                                     content=body, headers=auth())
        listed = await client.get(ARTIFACTS, headers=auth())
        downloaded = await client.get(f"{ARTIFACTS}/app.tar.gz", headers=auth())
        deleted = await client.delete(f"{ARTIFACTS}/app.tar.gz", headers=auth())
        after = await client.get(ARTIFACTS, headers=auth())
        gone = await client.get(f"{ARTIFACTS}/app.tar.gz", headers=auth())
    assert uploaded.status_code == 201
    assert uploaded.json()["size"] == len(body)
    assert listed.json()["metadata"] == {"total": 1, "itemsLength": 1}
    item = listed.json()["items"][0]
    assert (item["name"], item["stage"], item["size"]) == ("app.tar.gz", "build", len(body))
    assert downloaded.status_code == 200
    assert downloaded.content == body
    assert "attachment" in downloaded.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(downloaded.content)) as tar:
        assert tar.extractfile("out/app").read() == b"binary output"
    assert deleted.status_code == 204
    assert after.json()["items"] == []
    assert gone.status_code == 404


@contextlib.asynccontextmanager
async def app_with_run(tmp_path: Path) -> AsyncIterator[tuple[object, dict]]:
    """An app over an embedded cluster holding the running run `wf-run1` of devops."""
    from cyclone.kube.embedded import EmbeddedCluster

    async with EmbeddedCluster(tmp_path / "cluster.db") as cluster:
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "cyclone-devops"}})
        run = await cluster.create({
            "apiVersion": "cyclone.dev/v1alpha1", "kind": "WorkflowRun",
            "metadata": {"name": "wf-run1", "namespace": "cyclone-devops",
                         "labels": {"project.cyclone.dev/name": "proj"}},
            "spec": {"workflowRef": {"name": "wf"}}}, namespace="cyclone-devops")
        run["status"] = {"overall": {"phase": "Running"}}
        run = await cluster.replace_status(run)
        yield build_app(tmp_path / "data", cluster=cluster), run


async def test_upload_with_the_run_upload_token(tmp_path) -> None:
    async with app_with_run(tmp_path) as (app, run):
        state = app.state.cyclone
        token = await artifact_upload_token(state, "devops", run["metadata"]["uid"])
        other_run = await artifact_upload_token(state, "devops", "another-uid")
        async with client_for(app) as client:
            accepted = await client.post(f"{ARTIFACTS}/a.tgz", content=b"data",
                                         headers={"X-Upload-Token": token, "X-Tenant": "devops"})
            wrong_run = await client.post(f"{ARTIFACTS}/b.tgz", content=b"data",
                                          headers={"X-Upload-Token": other_run,
                                                   "X-Tenant": "devops"})
            wrong_tenant = await client.post(f"{ARTIFACTS}/c.tgz", content=b"data",
                                             headers={"X-Upload-Token": token,
                                                      "X-Tenant": "other"})
            as_resolver = await client.post(
                ARTIFACTS, params={"name": "data.tar.gz"}, content=b"tarball",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"})
            by_header = await client.post(ARTIFACTS, content=b"x", headers={
                "Authorization": f"Bearer {token}", "X-Artifact-Name": "h.tgz"})
            unnamed = await client.post(ARTIFACTS, content=b"x",
                                        headers={"Authorization": f"Bearer {token}"})
            reading = await client.get(ARTIFACTS, headers={"Authorization": f"Bearer {token}"})
            listed = await client.get(ARTIFACTS, headers=auth())
    assert token.startswith("cyu.devops.")
    assert accepted.status_code == 201
    assert wrong_run.status_code == 401
    assert wrong_tenant.status_code == 401
    assert as_resolver.status_code == 201
    assert by_header.status_code == 201
    assert unnamed.status_code == 400
    assert reading.status_code == 401
    assert sorted(i["name"] for i in listed.json()["items"]) == [
        "a.tgz", "data.tar.gz", "h.tgz"]


async def test_artifacts_are_isolated_per_tenant(tmp_path) -> None:
    app = build_app(tmp_path)
    async with client_for(app) as client:
        await client.post(f"{ARTIFACTS}/app.tgz", content=b"x", headers=auth())
        listed = await client.get(ARTIFACTS, headers=auth(OTHER))
        download = await client.get(f"{ARTIFACTS}/app.tgz", headers=auth(OTHER))
        delete = await client.delete(f"{ARTIFACTS}/app.tgz", headers=auth(OTHER))
        still_there = await client.get(f"{ARTIFACTS}/app.tgz", headers=auth())
        anonymous = await client.post(f"{ARTIFACTS}/x.tgz", content=b"x")
    assert listed.json()["items"] == []
    assert download.status_code == 404
    assert delete.status_code == 404
    assert still_there.status_code == 200
    assert anonymous.status_code == 401


async def test_bad_artifact_names_are_rejected(tmp_path) -> None:
    app = build_app(tmp_path)
    async with client_for(app) as client:
        hidden = await client.post(f"{ARTIFACTS}/.meta", content=b"x", headers=auth())
        dotdot = await client.post(f"{ARTIFACTS}/..%2Fescape", content=b"x", headers=auth())
    assert hidden.status_code == 400
    assert dotdot.status_code in (400, 404)
    assert not (tmp_path / "artifacts/devops/proj/wf/escape").exists()


async def test_expired_artifacts_are_swept_and_listed_with_expiry(tmp_path) -> None:
    app = build_app(tmp_path, extras={ARTIFACT_RETENTION_KEY: timedelta(days=7)})
    store = artifact_store_for(app.state.cyclone)
    old = datetime.now(UTC) - timedelta(days=8)

    async def body(data: bytes):
        yield data

    await store.save(RUN, "old.tgz", body(b"old"), now=old)
    await store.save(RUN, "new.tgz", body(b"new"))
    async with client_for(app) as client:
        before = await client.get(ARTIFACTS, headers=auth())
        assert sorted(i["name"] for i in before.json()["items"]) == ["new.tgz", "old.tgz"]
        assert all(i["expiresAt"] for i in before.json()["items"])
        assert store.sweep() == 1
        after = await client.get(ARTIFACTS, headers=auth())
    assert [i["name"] for i in after.json()["items"]] == ["new.tgz"]


async def test_without_retention_nothing_expires(tmp_path) -> None:
    store = ArtifactStore(tmp_path)

    async def body():
        yield b"x"

    await store.save(RUN, "a.tgz", body(), now=datetime(2000, 1, 1, tzinfo=UTC))
    assert store.sweep() == 0
    assert [i.name for i in store.list(RUN)] == ["a.tgz"]
    assert store.list(RUN)[0].expiresAt is None


async def test_oversized_upload_is_refused_and_leaves_nothing(tmp_path) -> None:
    app = build_app(tmp_path)
    artifact_store_for(app.state.cyclone).max_bytes = 10
    async with client_for(app) as client:
        response = await client.post(f"{ARTIFACTS}/big.tgz", content=b"x" * 100,
                                     headers=auth())
        listed = await client.get(ARTIFACTS, headers=auth())
    assert response.status_code == 413
    assert listed.json()["items"] == []
    assert not [p for p in (tmp_path / "artifacts/devops/proj/wf/wf-run1").iterdir()
                if p.is_file()]


async def test_http_resolver_push_uploads_to_its_run(tmp_path) -> None:
    import asyncio
    import os
    import shutil

    import pytest

    from logs.serving import serving

    if not (shutil.which("curl") and shutil.which("tar")):
        pytest.skip("the Http resolver needs curl and tar")
    import cyclone.resolvers

    script = Path(cyclone.resolvers.__file__).with_name("http.sh")
    workspace = tmp_path / "workspace"
    (workspace / "data").mkdir(parents=True)
    (workspace / "data" / "app.bin").write_bytes(b"built binary")
    async with app_with_run(tmp_path) as (app, run), serving(app) as url:
        env = {**os.environ, "WORKSPACE": str(workspace), "ARTIFACT": "bin.tar.gz",
               "URL": f"{url}{ARTIFACTS}",
               "TOKEN": await artifact_upload_token(app.state.cyclone, "devops",
                                                    run["metadata"]["uid"])}
        process = await asyncio.create_subprocess_exec(
            "sh", str(script), "push", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()
        async with httpx.AsyncClient(base_url=url) as client:
            downloaded = await client.get(f"{ARTIFACTS}/bin.tar.gz", headers=auth())
    with tarfile.open(fileobj=io.BytesIO(downloaded.content)) as tar:
        assert tar.extractfile("./app.bin").read() == b"built binary"


def test_the_server_keeps_artifacts_for_its_configured_retention(tmp_path) -> None:
    from cyclone.kube.embedded import EmbeddedCluster
    from cyclone.server import create_app
    from cyclone.server.artifacts.routes import retention_from_days
    from cyclone.up import UpOptions

    cluster = EmbeddedCluster(tmp_path / "cluster.db")
    kept = create_app(cluster=cluster, data_dir=tmp_path, admin_token="a",
                      artifact_retention=retention_from_days(UpOptions().artifact_retention_days))
    forever = create_app(cluster=cluster, data_dir=tmp_path, admin_token="a",
                         artifact_retention=retention_from_days(0))
    assert artifact_store_for(kept.state.cyclone).retention == timedelta(days=30)
    assert artifact_store_for(forever.state.cyclone).retention is None
