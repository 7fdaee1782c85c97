"""SCM servers on local addresses: refused at creation when literally local, refused at
call time when the name resolves to one (DNS rebinding included), allowed by an admin."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from cyclone.server.scmrepos import RESOLVER

from .helpers import allow_local_addresses


@contextlib.asynccontextmanager
async def fake_github() -> AsyncIterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.1 answering every GET with one repository."""
    requests: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        requests.append(request_line.split(" ")[1] if " " in request_line else "")
        body = json.dumps([{"full_name": "org/app", "html_url": "u"}]).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() +
                     b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], requests
    finally:
        server.close()
        await server.wait_closed()


def github(server: str) -> dict:
    return {"metadata": {"name": "ghe"}, "spec": {"type": "SCM", "scm": {
        "type": "GitHub", "server": server, "token": "ghp_secret"}}}


@pytest.mark.parametrize("server", [
    "http://127.0.0.1:8080", "http://localhost:3000", "http://[::1]", "http://0.0.0.0:80",
    "http://169.254.169.254", "http://scm.localhost",
])
async def test_a_literally_local_scm_server_is_refused_at_creation(devops, server) -> None:
    response = await devops.post("/integrations", json=github(server))
    assert response.status_code == 422, response.text
    assert "spec.scm.server" in response.json()["message"]
    assert "allowLocalAddresses" in response.json()["message"]
    assert (await devops.get("/integrations/ghe")).status_code == 404


async def test_an_update_to_a_local_scm_server_is_refused(devops) -> None:
    assert (await devops.post("/integrations", json=github("https://ghe.example.com"))
            ).status_code == 201
    response = await devops.put("/integrations/ghe", json=github("http://127.0.0.1:9"))
    assert response.status_code == 422, response.text


async def test_an_admin_may_allow_local_scm_servers(admin, devops) -> None:
    await allow_local_addresses(admin, "devops")
    response = await devops.post("/integrations", json=github("http://127.0.0.1:8080"))
    assert response.status_code == 201, response.text


async def test_a_tenant_cannot_allow_itself_local_addresses(devops) -> None:
    current = (await devops.get("/tenants/devops"))
    body = {"metadata": {"name": "devops"},
            "spec": {**(current.json().get("spec") or {}), "allowLocalAddresses": True}}
    response = await devops.put("/tenants/devops", json=body)
    assert response.status_code in (403, 404)


async def test_a_name_resolving_to_loopback_is_not_called(app, devops) -> None:
    async with fake_github() as (port, requests):
        async def loopback(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        app.state.cyclone.extras[RESOLVER] = loopback
        assert (await devops.post("/integrations", json=github(f"http://scm.test:{port}"))
                ).status_code == 201
        response = await devops.get("/integrations/ghe/scmrepos")
    assert response.status_code == 403, response.text
    assert "loopback" in response.json()["message"]
    assert "allowLocalAddresses" in response.json()["message"]
    assert requests == []


async def test_a_name_rebound_to_loopback_after_the_check_is_not_called(app, devops) -> None:
    answers = iter([["140.82.112.5"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers, ["127.0.0.1"])

    async with fake_github() as (port, requests):
        app.state.cyclone.extras[RESOLVER] = rebinding
        assert (await devops.post("/integrations", json=github(f"http://scm.test:{port}"))
                ).status_code == 201
        response = await devops.get("/integrations/ghe/scmrepos")
    assert response.status_code == 403, response.text
    assert "loopback" in response.json()["message"]
    assert requests == []


async def test_once_allowed_the_local_scm_server_is_called(app, admin, devops) -> None:
    await allow_local_addresses(admin, "devops")
    async with fake_github() as (port, requests):
        assert (await devops.post("/integrations", json=github(f"http://127.0.0.1:{port}"))
                ).status_code == 201
        response = await devops.get("/integrations/ghe/scmrepos")
    assert response.status_code == 200, response.text
    assert [r["name"] for r in response.json()["items"]] == ["org/app"]
    assert requests == ["/api/v3/user/repos?per_page=100"]
