"""A tenant token reaches nothing of another tenant's logs, streams or artifacts."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from cli.conftest import ADMIN_TOKEN
from cli.test_objects_cli import MANIFESTS, write
from cyclone.kube import kinds
from cyclone.server.logs import LogRef, LogStore, RunRef

RUN = "/apis/v1alpha1/projects/demo/workflows/ci/workflowruns/iso-run"


def token_for(url: str, tenant: str) -> str:
    response = httpx.post(f"{url}/apis/v1alpha1/tenants/{tenant}/tokens", json={},
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 201, response.text
    return response.json()["token"]


@pytest.fixture(scope="module")
def tenants(live_server, tmp_path_factory) -> dict[str, str]:
    for tenant in ("iso-a", "iso-b"):
        response = httpx.post(f"{live_server.url}/apis/v1alpha1/tenants",
                              json={"metadata": {"name": tenant}},
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 201, response.text
    return {t: token_for(live_server.url, t) for t in ("iso-a", "iso-b")}


@pytest.fixture
def run_of_a(cyclone, tenants, live_server, tmp_path) -> None:
    env = {"CYCLONE_TOKEN": tenants["iso-a"]}
    assert cyclone("apply", "-f", write(tmp_path, MANIFESTS), env=env).exit_code == 0
    created = cyclone("run", "ci", "-p", "demo", "--name", "iso-run", env=env)
    assert created.exit_code == 0 or "already exists" in created.stderr
    run = live_server.call(live_server.cluster.get(kinds.WORKFLOW_RUN, "iso-run",
                                                   "cyclone-iso-a"))
    writer = LogStore(live_server.data_dir / "logs").writer(
        LogRef(RunRef("iso-a", "demo", "ci", "iso-run", uid=run["metadata"]["uid"]),
               "build", "c0"))
    if not writer.complete:
        writer.append(b"private\n", 8)
        writer.finish()
    upload = httpx.post(f"{live_server.url}{RUN}/artifacts/out.tgz", content=b"tar",
                        headers={"Authorization": f"Bearer {tenants['iso-a']}"})
    assert upload.status_code == 201, upload.text


def test_owner_reads_its_logs_and_artifacts(cyclone, tenants, run_of_a, live_server) -> None:
    env = {"CYCLONE_TOKEN": tenants["iso-a"]}
    assert cyclone("logs", "iso-run", "--stage", "build", env=env).stdout == "private\n"
    listed = httpx.get(f"{live_server.url}{RUN}/artifacts",
                       headers={"Authorization": f"Bearer {tenants['iso-a']}"})
    assert [i["name"] for i in listed.json()["items"]] == ["out.tgz"]


def test_other_tenant_cannot_read_stream_or_touch_anything(cyclone, tenants, run_of_a,
                                                           live_server) -> None:
    other = {"Authorization": f"Bearer {tenants['iso-b']}"}
    naming_a = {**other, "X-Tenant": "iso-a"}
    url = live_server.url
    for headers in (other, naming_a):
        answers = [
            httpx.get(f"{url}{RUN}/logs", params={"stage": "build"}, headers=headers),
            httpx.get(f"{url}{RUN}/logstream/sse", params={"stage": "build"},
                      headers=headers, timeout=5),
            httpx.get(f"{url}{RUN}/artifacts/out.tgz", headers=headers),
            httpx.delete(f"{url}{RUN}/artifacts/out.tgz", headers=headers),
        ]
        assert [a.status_code for a in answers] == [404, 404, 404, 404]
        listed = httpx.get(f"{url}{RUN}/artifacts", headers=headers)
        assert listed.status_code == 404 or listed.json()["items"] == []
    cli = cyclone("logs", "iso-run", "-p", "demo", "-w", "ci", "-f",
                  env={"CYCLONE_TOKEN": tenants["iso-b"], "CYCLONE_TENANT": "iso-a"})
    assert cli.exit_code == 1
    assert cli.stderr.startswith("error: ")
    still_there = httpx.get(f"{url}{RUN}/artifacts/out.tgz",
                            headers={"Authorization": f"Bearer {tenants['iso-a']}"})
    assert still_there.status_code == 200


def test_other_tenant_websocket_is_refused(tenants, run_of_a, live_server) -> None:
    ws_url = (live_server.url.replace("http", "ws")
              + f"{RUN}/logstream?stage=build&tenant=iso-a&token={tenants['iso-b']}")

    async def attempt() -> int | None:
        try:
            async with websockets.connect(ws_url) as socket:
                await asyncio.wait_for(socket.recv(), 5)
        except websockets.exceptions.InvalidStatus as err:
            return err.response.status_code
        except websockets.exceptions.ConnectionClosed as err:
            return err.rcvd.code if err.rcvd else None
        return None

    assert asyncio.run(attempt()) in (403, 1008)
