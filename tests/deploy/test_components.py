"""`cyclone server`, `cyclone node` and `cyclone engine` as processes on an embedded store."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from support.clusters import eventually

from cyclone.components import ComponentError, ServerOptions, read_admin_token
from cyclone.devcluster.plane import free_port
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import NotFound

from .replicas import LEASE_NAMESPACE, REPO

TOKEN = "deploy-admin-token"


async def cyclone(*args: str, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cyclone.cli.main", *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=log.open("wb"),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def holder(cluster: EmbeddedCluster, lease: str) -> str | None:
    try:
        found = await cluster.get(kinds.LEASE, lease, LEASE_NAMESPACE)
    except NotFound:
        return None
    return (found.get("spec") or {}).get("holderIdentity") or None


async def stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 30)


async def test_server_serves_the_api_and_releases_its_lease_on_sigterm(tmp_path):
    db = tmp_path / "cluster.db"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    log = tmp_path / "server.log"
    server = await cyclone(
        "server", "--embedded", str(db), "--data-dir", str(tmp_path / "data"),
        "--host", "127.0.0.1", "--port", str(port), "--admin-token-file", str(token_file),
        "--identity", "server-1", "--retry-period", "0.2", "--renew-deadline", "1",
        "--lease-duration", "2", log=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async def healthy() -> bool:
                return (await http.get("/healthcheck")).status_code == 200

            await eventually(healthy, timeout=30)
            anonymous = await http.get("/apis/v1alpha1/tenants")
            admin = await http.get("/apis/v1alpha1/tenants",
                                   headers={"Authorization": f"Bearer {TOKEN}"})
        async with EmbeddedCluster(db) as cluster:
            assert await eventually(lambda: holder(cluster, "cyclone-server"),
                                    timeout=30) == "server-1"
            code = await stop(server)
            released = await holder(cluster, "cyclone-server")
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert anonymous.status_code == 401
    assert admin.status_code == 200, admin.text
    assert code == 0, log.read_text()
    assert released is None


async def test_node_runs_pods_of_the_store(tmp_path):
    db = tmp_path / "cluster.db"
    log = tmp_path / "node.log"
    node = await cyclone("node", "--embedded", str(db), "--data-dir", str(tmp_path / "node"),
                         "--node-name", "solo", "--runtime", "fake", "--schedule-unbound",
                         log=log)
    try:
        async with EmbeddedCluster(db) as cluster:
            await eventually(lambda: cluster.get(kinds.NODE, "solo"), timeout=30)
            await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "work"}})
            await cluster.create({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "work"},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "busybox"}]},
            })

            async def phase() -> str | None:
                pod = await cluster.get(kinds.POD, "p", "work")
                found = (pod.get("status") or {}).get("phase")
                return found if found in ("Succeeded", "Failed") else None

            finished = await eventually(phase, timeout=30)
            pod = await cluster.get(kinds.POD, "p", "work")
    finally:
        await stop(node)
    assert finished == "Succeeded", log.read_text()
    assert pod["spec"]["nodeName"] == "solo"


async def test_sigterm_hands_the_engine_lease_over_at_once(tmp_path):
    db = tmp_path / "cluster.db"
    slow = ["--lease-duration", "600", "--renew-deadline", "400", "--retry-period", "0.2"]
    first = await cyclone("engine", "--embedded", str(db), "--identity", "first", *slow,
                          log=tmp_path / "first.log")
    second = None
    try:
        async with EmbeddedCluster(db) as cluster:
            assert await eventually(lambda: holder(cluster, "cyclone-engine"),
                                    timeout=30) == "first"
            second = await cyclone("engine", "--embedded", str(db), "--identity", "second",
                                   *slow, log=tmp_path / "second.log")
            await eventually(lambda: "second stands by" in (tmp_path / "second.log").read_text(),
                             timeout=60)
            assert await holder(cluster, "cyclone-engine") == "first"
            assert await stop(first) == 0
            assert await eventually(lambda: holder(cluster, "cyclone-engine"),
                                    timeout=60) == "second"
            await eventually(lambda: "engine ready" in (tmp_path / "second.log").read_text(),
                             timeout=60)
    finally:
        for process in (first, second):
            if process is not None:
                await stop(process)


@pytest.mark.parametrize(("args", "message"), [
    (["--lease-duration", "5", "--renew-deadline", "8"], "lease_duration"),
    (["--config", "/nonexistent/engine.yaml"], "invalid engine configuration"),
])
async def test_engine_refuses_bad_settings_with_one_line(tmp_path, args, message):
    log = tmp_path / "engine.log"
    process = await cyclone("engine", "--embedded", str(tmp_path / "c.db"), *args, log=log)
    code = await asyncio.wait_for(process.wait(), 30)
    text = log.read_text()
    assert code != 0
    assert message in text
    assert "Traceback" not in text


def test_admin_token_comes_from_the_file_then_the_environment(tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(" from-file \n")
    monkeypatch.setenv("CYCLONE_ADMIN_TOKEN", "from-env")
    assert read_admin_token(str(token_file), tmp_path) == "from-file"
    assert read_admin_token(None, tmp_path) == "from-env"
    monkeypatch.delenv("CYCLONE_ADMIN_TOKEN")
    created = read_admin_token(None, tmp_path)
    assert created and read_admin_token(None, tmp_path) == created
    token_file.write_text("")
    with pytest.raises(ComponentError):
        read_admin_token(str(token_file), tmp_path)
    assert ServerOptions().port == 7099
