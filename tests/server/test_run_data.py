"""A run's stored logs and artifacts live and die with the run (by its uid), and a tenant's
with the tenant."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.server import create_app
from cyclone.server.logs import log_store_for
from cyclone.server.logs.rundata import RunDataSweeper
from cyclone.server.logs.services import log_and_artifact_routers, run_data_roots
from cyclone.server.logs.store import LogRef, RunRef

from .helpers import ADMIN_TOKEN, create_tenant, make_client, tenant_token

RUNS = "/projects/demo/workflows/ci/workflowruns"
RUN = f"{RUNS}/ci-1"
STAGE = {"metadata": {"name": "build"}, "spec": {"pod": {
    "spec": {"containers": [{"image": "busybox", "command": ["true"]}]}}}}


@pytest.fixture
async def logs_app(cluster, tmp_path: Path):
    application = create_app(cluster=cluster, data_dir=tmp_path / "data",
                             admin_token=ADMIN_TOKEN,
                             extra_routers=log_and_artifact_routers())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def admin(logs_app) -> AsyncIterator:
    async with make_client(logs_app, ADMIN_TOKEN) as client:
        yield client


@pytest.fixture
async def devops(logs_app, admin) -> AsyncIterator:
    await create_tenant(admin, "devops")
    async with make_client(logs_app, await tenant_token(admin, "devops")) as client:
        response = await client.post("/projects", json={"metadata": {"name": "demo"}})
        assert response.status_code == 201, response.text
        assert (await client.post("/projects/demo/stages", json=STAGE)).status_code == 201
        response = await client.post("/projects/demo/workflows", json={
            "metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
        assert response.status_code == 201, response.text
        yield client


def collect(app, run: dict, line: bytes) -> None:
    """Store a log line for the run as the collector would (under the run's uid)."""
    store = log_store_for(app.state.cyclone)
    ref = RunRef("devops", "demo", "ci", run["metadata"]["name"], uid=run["metadata"]["uid"])
    writer = store.writer(LogRef(ref, "build", "main"))
    writer.append(line, len(line))
    writer.finish()


async def start(devops) -> dict:
    response = await devops.post(RUNS, json={"metadata": {"name": "ci-1"}})
    assert response.status_code == 201, response.text
    return response.json()


def stored_files(app) -> list[Path]:
    return [p for root in run_data_roots(app.state.cyclone) if root.exists()
            for p in root.rglob("*") if p.is_file()]


async def end_deletion(cluster, name: str) -> None:
    """What the engine does once it has cleaned a deleted run: drop its finalizer (no
    engine runs here, and a run started through the API is created with one)."""
    with contextlib.suppress(NotFound):
        await cluster.patch(kinds.WORKFLOW_RUN, name, {"metadata": {"finalizers": None}},
                            "cyclone-devops")


async def delete_run(cluster, name: str) -> None:
    await cluster.delete(kinds.WORKFLOW_RUN, name, "cyclone-devops")
    await end_deletion(cluster, name)


async def test_deleting_a_run_removes_its_logs_and_artifacts(logs_app, devops, cluster):
    run = await start(devops)
    collect(logs_app, run, b"secret build output\n")
    uploaded = await devops.post(f"{RUN}/artifacts/app.tgz", content=b"old tarball")
    assert uploaded.status_code == 201, uploaded.text
    assert (await devops.get(f"{RUN}/logs", params={"stage": "build"})).text == \
        "secret build output\n"
    assert stored_files(logs_app)

    deleted = await devops.delete(RUN)

    assert deleted.status_code == 204
    assert stored_files(logs_app) == []
    await end_deletion(cluster, "ci-1")
    assert (await devops.get(f"{RUN}/logs")).status_code == 404
    assert (await devops.get(f"{RUN}/artifacts")).status_code == 404


async def test_a_run_created_again_under_the_same_name_starts_clean(logs_app, devops, cluster):
    old = await start(devops)
    collect(logs_app, old, b"old line\n")
    assert (await devops.post(f"{RUN}/artifacts/app.tgz", content=b"old")).status_code == 201
    await delete_run(cluster, "ci-1")
    new = await start(devops)
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    collect(logs_app, old, b"late line of the old run\n")

    logs = await devops.get(f"{RUN}/logs")
    artifacts = await devops.get(f"{RUN}/artifacts")
    download = await devops.get(f"{RUN}/artifacts/app.tgz")

    assert logs.status_code == 404
    assert artifacts.json()["items"] == []
    assert download.status_code == 404
    collect(logs_app, new, b"new line\n")
    assert (await devops.get(f"{RUN}/logs", params={"stage": "build"})).text == "new line\n"


async def test_a_log_stream_answers_only_the_current_runs_lines(logs_app, devops, cluster):
    old = await start(devops)
    collect(logs_app, old, b"old line\n")
    await delete_run(cluster, "ci-1")
    new = await start(devops)
    collect(logs_app, old, b"late line of the old run\n")
    collect(logs_app, new, b"new line\n")

    streamed = await devops.get(f"{RUN}/logstream", params={"stage": "build"})

    assert streamed.status_code == 200
    assert streamed.text == "new line\n"


async def test_the_sweep_removes_data_of_runs_that_are_gone(logs_app, devops, cluster):
    kept = await start(devops)
    collect(logs_app, kept, b"kept\n")
    assert (await devops.post(f"{RUN}/artifacts/app.tgz", content=b"kept")).status_code == 201
    response = await devops.post(RUNS, json={"metadata": {"name": "ci-2"}})
    gone = response.json()
    collect(logs_app, gone, b"gone\n")
    stale = dict(kept, metadata={**kept["metadata"], "uid": "0000-stale"})
    collect(logs_app, stale, b"an earlier run of the same name\n")
    legacy = log_store_for(logs_app.state.cyclone).writer(
        LogRef(RunRef("devops", "demo", "ci", "ci-1"), "build", "main"))
    legacy.append(b"older layout\n", 13)
    await cluster.patch(kinds.WORKFLOW_RUN, "ci-2", {"metadata": {"finalizers": ["x/y"]}},
                        "cyclone-devops")
    await cluster.delete(kinds.WORKFLOW_RUN, "ci-2", "cyclone-devops")
    await cluster.patch(kinds.WORKFLOW_RUN, "ci-2", {"metadata": {"finalizers": []}},
                        "cyclone-devops")
    orphan_tenant = log_store_for(logs_app.state.cyclone).root / "ghost" / "p" / "w" / "r"
    orphan_tenant.mkdir(parents=True)
    (orphan_tenant / "x.log").write_text("from a tenant deleted while the server was down")

    sweeper = RunDataSweeper(cluster, run_data_roots(logs_app.state.cyclone))
    removed = await sweeper.sweep()

    assert removed >= 4
    logs_root = log_store_for(logs_app.state.cyclone).root
    remaining = sorted(str(p.relative_to(logs_root)) for p in logs_root.rglob("*.log"))
    assert remaining == [f"devops/demo/ci/ci-1/{kept['metadata']['uid']}/build/main.log"]
    assert not (logs_root / "ghost").exists()
    assert (await devops.get(f"{RUN}/logs", params={"stage": "build"})).text == "kept\n"
    assert [a["name"] for a in (await devops.get(f"{RUN}/artifacts")).json()["items"]] == \
        ["app.tgz"]


async def test_deleting_a_tenant_removes_its_data_and_the_name_can_be_used_again(
        logs_app, admin, devops, cluster):
    run = await start(devops)
    collect(logs_app, run, b"line\n")
    assert (await devops.post(f"{RUN}/artifacts/app.tgz", content=b"x")).status_code == 201
    await cluster.patch(kinds.WORKFLOW_RUN, "ci-1", {"metadata": {"finalizers": ["x/hold"]}},
                        "cyclone-devops")
    roots = run_data_roots(logs_app.state.cyclone)
    assert all((root / "devops").exists() for root in roots)

    deleted = await admin.delete("/tenants/devops")

    assert deleted.status_code == 204
    assert not any((root / "devops").exists() for root in roots)
    again = await admin.post("/tenants", json={"metadata": {"name": "devops"}})
    read = await admin.get("/tenants/devops")
    listed = await admin.get("/tenants")
    assert again.status_code == 409
    assert "being deleted" in again.json()["message"]
    assert read.status_code == 404
    assert "being deleted" in read.json()["message"]
    assert "devops" not in [t["metadata"]["name"] for t in listed.json()["items"]]

    await cluster.patch(kinds.WORKFLOW_RUN, "ci-1", {"metadata": {"finalizers": []}},
                        keys.tenant_namespace("devops"))
    created = await admin.post("/tenants", json={"metadata": {"name": "devops"}})
    assert created.status_code == 201, created.text
    assert (await admin.get("/tenants/devops")).status_code == 200


def test_artifact_store_keeps_uid_folders_apart(tmp_path) -> None:
    from cyclone.server.artifacts.store import ArtifactStore

    store = ArtifactStore(tmp_path)
    first = RunRef("t", "p", "w", "r", uid="uid-1")
    second = RunRef("t", "p", "w", "r", uid="uid-2")
    assert store.run_dir(first) != store.run_dir(second)
    assert store.run_dir(first).parent == store.run_dir(RunRef("t", "p", "w", "r"))



def test_empty_folders_go_only_once_they_have_settled(tmp_path) -> None:
    import time

    from cyclone.server.logs.rundata import remove_empty_dirs

    (tmp_path / "t" / "p" / "w" / "r").mkdir(parents=True)
    (tmp_path / "u" / "p").mkdir(parents=True)
    (tmp_path / "u" / "p" / "kept.log").write_text("x")
    remove_empty_dirs(tmp_path, grace=30, now=time.time())
    assert (tmp_path / "t" / "p" / "w" / "r").is_dir()
    remove_empty_dirs(tmp_path, grace=30, now=time.time() + 60)
    assert not (tmp_path / "t").exists()
    assert (tmp_path / "u" / "p" / "kept.log").exists()
    assert tmp_path.is_dir()
