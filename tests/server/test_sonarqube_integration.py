"""A SonarQube integration's token is checked against its server when it is created or
updated: refused when the server says it is not valid, stored (with a logged warning) when
the server cannot be asked."""

from __future__ import annotations

import logging
import socket

import pytest
from support.sonarqube import sonarqube

from cyclone.server.sonarqube import token_verdict

from .helpers import allow_local_addresses

TOKEN = "squ_good-4f1e0a9b"
BAD_TOKEN = "squ_bad-77c2d1e0"


def sonar(server: str, token: str | None = None, name: str = "sonar") -> dict:
    source = {"server": server} | ({"token": token} if token else {})
    return {"metadata": {"name": name}, "spec": {"type": "SonarQube", "sonarQube": source}}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_token_the_server_refuses_is_refused_naming_the_field(devops, admin):
    await allow_local_addresses(admin, "devops")
    with sonarqube({TOKEN}, {}) as server:
        refused = await devops.post("/integrations", json=sonar(server.url, BAD_TOKEN))
        created = await devops.post("/integrations", json=sonar(server.url, TOKEN))
        asked = list(server.requests)
    assert refused.status_code == 422, refused.text
    message = refused.json()["message"]
    assert message.startswith("spec.sonarQube.token: not valid for the SonarQube server")
    assert "\n" not in message and BAD_TOKEN not in message
    assert created.status_code == 201, created.text
    assert asked == [("/api/authentication/validate", BAD_TOKEN),
                     ("/api/authentication/validate", TOKEN)]
    assert (await devops.get("/integrations/sonar")).status_code == 200


async def test_an_update_is_checked_with_the_stored_token_when_none_is_given(devops, admin):
    await allow_local_addresses(admin, "devops")
    with sonarqube({TOKEN}, {}) as server:
        assert (await devops.post("/integrations", json=sonar(server.url, TOKEN))).status_code \
            == 201
        kept = await devops.put("/integrations/sonar", json=sonar(server.url + "/"))
        changed = await devops.put("/integrations/sonar", json=sonar(server.url, BAD_TOKEN))
        asked = [token for _, token in server.requests]
    assert kept.status_code == 200, kept.text
    assert changed.status_code == 422 and "spec.sonarQube.token" in changed.json()["message"]
    assert asked == [TOKEN, TOKEN, BAD_TOKEN]


async def test_a_server_that_cannot_be_asked_does_not_decide(devops, admin, caplog):
    await allow_local_addresses(admin, "devops")
    unreachable = f"http://127.0.0.1:{closed_port()}"
    with caplog.at_level(logging.WARNING, logger="cyclone.server.sonarqube"):
        created = await devops.post("/integrations", json=sonar(unreachable, TOKEN))
    assert created.status_code == 201, created.text
    warning = next(r.getMessage() for r in caplog.records
                   if r.name == "cyclone.server.sonarqube")
    assert "stored without checking its token" in warning and "unreachable" in warning
    assert TOKEN not in caplog.text


async def test_a_local_server_is_not_asked_unless_the_tenant_may_use_local_addresses(devops,
                                                                                    caplog):
    with sonarqube(set(), {}) as server, \
            caplog.at_level(logging.WARNING, logger="cyclone.server.sonarqube"):
        created = await devops.post("/integrations", json=sonar(server.url, BAD_TOKEN))
        asked = list(server.requests)
    assert created.status_code == 201, created.text
    assert asked == []
    assert "loopback" in caplog.text


async def test_a_sonarqube_integration_needs_a_server(devops):
    refused = await devops.post("/integrations", json={
        "metadata": {"name": "sonar"}, "spec": {"type": "SonarQube", "sonarQube": {
            "token": TOKEN}}})
    assert refused.status_code == 422
    assert refused.json()["message"] == "spec.sonarQube.server: required"


@pytest.mark.parametrize(("status", "body", "valid"), [
    (200, {"valid": True}, True), (200, {"valid": False}, False), (401, None, False),
    (403, {"errors": []}, False), (200, {"valid": "yes"}, None), (200, None, None),
    (500, {"valid": True}, None), (302, None, None)])
def test_what_sonarqubes_answer_says_of_a_token(status, body, valid):
    assert token_verdict(status, body).valid is valid
