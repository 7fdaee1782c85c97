"""Request body limits and the JSON depth limit, enforced before any route reads a body."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from cyclone.server import create_app
from cyclone.server.errors import install_error_handlers
from cyclone.server.limits import (
    BodyKind,
    RequestLimits,
    RequestLimitsMiddleware,
    body_kind,
    json_depth_exceeds,
)
from cyclone.server.logs.services import log_and_artifact_routers

from .helpers import ADMIN_TOKEN, make_client

SMALL = RequestLimits(max_body_bytes=4096, max_artifact_bytes=64 * 1024,
                      max_webhook_bytes=16 * 1024, max_json_depth=8)
RUN = "/projects/p/workflows/w/workflowruns/r"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_counts_only_brackets_outside_strings() -> None:
    assert not json_depth_exceeds(nested(8), 8)
    assert json_depth_exceeds(nested(9), 8)
    assert json_depth_exceeds(b'{"a":' * 9 + b"1" + b"}" * 9, 8)
    inside_string = json.dumps({"text": "[" * 500 + '\\"{' * 100}).encode()
    assert not json_depth_exceeds(inside_string, 8)
    assert not json_depth_exceeds(b"[1,[2],[3],[4],[5],[6],[7],[8],[9],[10]]", 2)


def test_body_kinds_of_routes() -> None:
    api = "/apis/v1alpha1"
    assert body_kind("POST", f"{api}{RUN}/artifacts/out") == BodyKind.ARTIFACT
    assert body_kind("POST", f"{api}{RUN}/artifacts") == BodyKind.ARTIFACT
    assert body_kind("GET", f"{api}{RUN}/artifacts/out") == BodyKind.OBJECT
    assert body_kind("POST", f"{api}/tenants/t/webhook") == BodyKind.WEBHOOK
    assert body_kind("PUT", f"{api}/delegations/ns/r/s") == BodyKind.SELF_AUTHORISED
    assert body_kind("PUT", f"{api}/workflowruns/r/stages/s/result") == \
        BodyKind.SELF_AUTHORISED
    assert body_kind("POST", f"{api}/projects") == BodyKind.OBJECT
    assert body_kind("POST", "/healthcheck") == BodyKind.PUBLIC


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        RequestLimits(max_body_bytes=0)


@pytest.fixture
async def small_app(cluster, tmp_path: Path):
    application = create_app(cluster=cluster, data_dir=tmp_path / "data",
                             admin_token=ADMIN_TOKEN, limits=SMALL,
                             extra_routers=log_and_artifact_routers())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def small_admin(small_app) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(small_app, ADMIN_TOKEN) as client:
        yield client


class CountingBody:
    """A streamed (chunked) request body that records how much of it was pulled."""

    def __init__(self, chunks: int, size: int = 1024) -> None:
        self.chunks, self.size, self.pulled = chunks, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"x" * self.size


def project(description: str = "") -> dict:
    return {"metadata": {"name": "p", "annotations": {"description": description}}}


async def test_a_body_within_the_limit_is_served(small_admin) -> None:
    response = await small_admin.post("/projects", json=project("small"))
    assert response.status_code == 201, response.text


async def test_a_declared_length_over_the_limit_answers_413(small_admin) -> None:
    response = await small_admin.post("/projects", json=project("x" * 5000))
    assert response.status_code == 413
    assert response.json()["reason"] == "RequestEntityTooLarge"
    assert "4096 bytes" in response.json()["message"]
    assert (await small_admin.get("/projects")).json()["items"] == []


async def test_a_chunked_body_is_counted_and_abandoned_at_the_limit(small_admin) -> None:
    body = CountingBody(chunks=100)
    response = await small_admin.post("/projects", content=body,
                                      headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert body.pulled <= 6


async def test_the_default_limit_refuses_a_20_mib_object(admin) -> None:
    response = await admin.post("/projects", json=project("x" * (20 * 1024 * 1024)))
    assert response.status_code == 413


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "},
])
async def test_a_body_without_a_bearer_token_is_refused_unread(small_app, headers) -> None:
    body = CountingBody(chunks=50)
    async with make_client(small_app) as anonymous:
        response = await anonymous.post("/projects", content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert body.pulled <= 1


async def test_an_unauthenticated_body_over_the_limit_answers_401_not_413(small_app) -> None:
    async with make_client(small_app) as anonymous:
        response = await anonymous.post("/projects", content=b"x" * 100_000)
    assert response.status_code == 401


async def test_deep_json_answers_422_before_it_is_parsed(small_admin) -> None:
    response = await small_admin.post(
        "/projects", content=b'{"metadata": {"name": "p"}, "spec": ' + nested(20) + b"}",
        headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "deeper than 8 levels" in response.json()["message"]


async def test_the_default_depth_limit_refuses_thousands_of_levels(admin) -> None:
    for depth in (500, 5000, 100_000):
        response = await admin.post(
            "/projects", content=b'{"spec": ' + nested(depth) + b"}",
            headers={"Content-Type": "application/json"})
        assert response.status_code == 422, depth
        assert "deeper than 64 levels" in response.json()["message"]


def streaming_app(limits: RequestLimits) -> FastAPI:
    """A route that streams its body, as the artifact upload does, set up like the server."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestLimitsMiddleware, limits=limits)

    @app.post(f"/apis/v1alpha1{RUN}/artifacts/{{name}}", status_code=201)
    async def upload(request: Request, name: str) -> dict:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    return app


async def test_an_artifact_upload_is_streamed_with_its_own_larger_limit() -> None:
    transport = httpx.ASGITransport(app=streaming_app(SMALL))
    async with httpx.AsyncClient(transport=transport, base_url="http://cyclone.test",
                                 headers={"Authorization": "Bearer t"}) as client:
        within = await client.post(f"/apis/v1alpha1{RUN}/artifacts/out",
                                   content=CountingBody(32))
        assert within.status_code == 201
        assert within.json() == {"size": 32 * 1024}
        body = CountingBody(200)
        over = await client.post(f"/apis/v1alpha1{RUN}/artifacts/out", content=body)
        assert over.status_code == 413
        assert "65536 bytes" in over.json()["message"]
        assert body.pulled <= 65
        declared = await client.post(f"/apis/v1alpha1{RUN}/artifacts/out",
                                     content=b"x" * 70_000)
        assert declared.status_code == 413


async def test_an_upload_token_is_enough_to_send_an_artifact() -> None:
    transport = httpx.ASGITransport(app=streaming_app(SMALL))
    async with httpx.AsyncClient(transport=transport, base_url="http://cyclone.test") as client:
        response = await client.post(f"/apis/v1alpha1{RUN}/artifacts/out", content=b"x",
                                     headers={"X-Upload-Token": "cyu.t.abc"})
        refused = await client.post(f"/apis/v1alpha1{RUN}/artifacts/out", content=b"x")
    assert response.status_code == 201
    assert refused.status_code == 401


async def test_a_webhook_has_its_own_limit_and_needs_no_token(small_app) -> None:
    async with make_client(small_app) as anonymous:
        within = await anonymous.post("/tenants/t/webhook?integration=i",
                                      content=b"{}" + b" " * 8000,
                                      headers={"X-GitHub-Event": "push"})
        over = await anonymous.post("/tenants/t/webhook?integration=i",
                                    content=b"{}" + b" " * 20_000,
                                    headers={"X-GitHub-Event": "push"})
    assert within.status_code != 413
    assert "Bearer" not in within.json()["message"]
    assert over.status_code == 413


async def test_a_deep_webhook_is_refused_whatever_its_content_type(small_app) -> None:
    async with make_client(small_app) as anonymous:
        response = await anonymous.post(
            "/tenants/t/webhook?integration=i", content=nested(50),
            headers={"X-GitHub-Event": "push",
                     "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 422
    assert "deeper than 8 levels" in response.json()["message"]
