from __future__ import annotations

import asyncio

import httpx
import websockets

from cyclone.server.logs import log_store_for
from cyclone.server.logs.store import LogRef, RunRef
from logs.serving import ADMIN, DEVOPS, OTHER, build_app, serving

RUN_PATH = "/apis/v1alpha1/projects/proj/workflows/wf/workflowruns/wf-run1"
RUN = RunRef("devops", "proj", "wf", "wf-run1")


def auth(token: str = DEVOPS) -> dict:
    return {"Authorization": f"Bearer {token}"}


def seed_logs(app) -> None:
    store = log_store_for(app.state.cyclone)
    for stage, container, body in [
        ("build", "csc-git", b"cloning\n"),
        ("build", "main", b"compiling\nok\n"),
        ("test", "main", b"3 passed\n"),
    ]:
        writer = store.writer(LogRef(RUN, stage, container))
        writer.append(body, len(body))
        writer.finish()


async def test_stage_log_is_served_as_plain_text(tmp_path) -> None:
    app = build_app(tmp_path)
    seed_logs(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        workload = await client.get(f"{RUN_PATH}/logs", params={"stage": "build"}, headers=auth())
        sidecar = await client.get(f"{RUN_PATH}/logs", params={"stage": "build",
                                   "container": "csc-git"}, headers=auth())
        everything = await client.get(f"{RUN_PATH}/logs", headers=auth())
    assert workload.status_code == 200
    assert workload.text == "compiling\nok\n"
    assert workload.headers["content-type"].startswith("text/plain")
    assert "content-disposition" not in workload.headers
    assert sidecar.text == "cloning\n"
    assert everything.text == (
        "==> build/csc-git <==\ncloning\n==> build <==\ncompiling\nok\n"
        "==> test <==\n3 passed\n"
    )


async def test_download_answers_an_attachment(tmp_path) -> None:
    app = build_app(tmp_path)
    seed_logs(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(f"{RUN_PATH}/logs", headers=auth(),
                                    params={"stage": "test", "download": "true"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="wf-run1-test-main.log"'
    )
    assert response.text == "3 passed\n"


async def test_another_tenant_sees_no_logs(tmp_path) -> None:
    app = build_app(tmp_path)
    seed_logs(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        own_tenant_only = await client.get(f"{RUN_PATH}/logs", params={"stage": "build"},
                                           headers=auth(OTHER))
        naming_devops = await client.get(f"{RUN_PATH}/logs", params={"stage": "build"},
                                         headers={**auth(OTHER), "X-Tenant": "devops"})
        admin = await client.get(f"{RUN_PATH}/logs", params={"stage": "build"},
                                 headers={**auth(ADMIN), "X-Tenant": "devops"})
        anonymous = await client.get(f"{RUN_PATH}/logs", params={"stage": "build"})
    assert own_tenant_only.status_code == 404
    assert naming_devops.status_code == 404
    assert admin.status_code == 200
    assert anonymous.status_code == 401


async def test_unknown_stage_and_bad_names_are_client_errors(tmp_path) -> None:
    app = build_app(tmp_path)
    seed_logs(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        missing = await client.get(f"{RUN_PATH}/logs", params={"stage": "deploy"},
                                   headers=auth())
        traversal = await client.get(f"{RUN_PATH}/logs", headers=auth(),
                                     params={"stage": "build", "container": "../../x"})
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NotFound"
    assert traversal.status_code == 400


async def test_sse_stream_delivers_lines_live_and_ends_with_the_container(tmp_path) -> None:
    app = build_app(tmp_path)
    store = log_store_for(app.state.cyclone)
    writer = store.writer(LogRef(RUN, "build", "main"))
    writer.append(b"first\n", 6)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        async with client.stream(
            "GET", f"{RUN_PATH}/logstream", params={"stage": "build"},
            headers={**auth(), "Accept": "text/event-stream"},
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            assert await anext(lines) == "data: first"
            writer.append(b"second\n", 7)
            assert await anext(lines) == ""
            assert await anext(lines) == "data: second"
            writer.finish()
            rest = [line async for line in lines]
    assert rest == ["", "event: end", "data: ", ""]


async def test_sse_path_streams_without_an_accept_header(tmp_path) -> None:
    app = build_app(tmp_path)
    store = log_store_for(app.state.cyclone)
    writer = store.writer(LogRef(RUN, "build", "main"))
    writer.append(b"only\n", 5)
    writer.finish()
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        response = await client.get(f"{RUN_PATH}/logstream/sse", params={"stage": "build"},
                                    headers=auth())
    assert response.text == "data: only\n\nevent: end\ndata: \n\n"


async def test_websocket_stream_waits_for_the_log_and_follows_it(tmp_path) -> None:
    app = build_app(tmp_path)
    store = log_store_for(app.state.cyclone)
    async with serving(app) as url:
        ws_url = url.replace("http", "ws") + f"{RUN_PATH}/logstream?stage=build&container=main"
        async with websockets.connect(ws_url, additional_headers=auth()) as socket:
            writer = store.writer(LogRef(RUN, "build", "main"))
            writer.append(b"hello\n", 6)
            assert await asyncio.wait_for(socket.recv(), 5) == "hello\n"
            writer.append(b"bye\n", 4)
            writer.finish()
            assert await asyncio.wait_for(socket.recv(), 5) == "bye\n"
            await asyncio.wait_for(socket.wait_closed(), 5)
        assert socket.close_code == 1000


async def test_websocket_without_a_valid_token_is_refused(tmp_path) -> None:
    app = build_app(tmp_path)
    async with serving(app) as url:
        ws_url = url.replace("http", "ws") + f"{RUN_PATH}/logstream?stage=build&token=nope"
        try:
            async with websockets.connect(ws_url) as socket:
                await asyncio.wait_for(socket.recv(), 5)
        except websockets.exceptions.InvalidStatus as err:
            assert err.response.status_code == 403
        except websockets.exceptions.ConnectionClosed as err:
            assert err.rcvd is not None and err.rcvd.code == 1008
        else:
            raise AssertionError("the stream was served without a valid token")


async def test_bad_stage_names_are_refused_before_streaming(tmp_path) -> None:
    app = build_app(tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        stream = await client.get(f"{RUN_PATH}/logstream/sse", params={"stage": "../x"},
                                  headers=auth())
        stored = await client.get(f"{RUN_PATH}/logs", params={"stage": "a/b"}, headers=auth())
    assert stream.status_code == 400
    assert stored.status_code == 400


async def test_websocket_keeps_characters_split_across_chunks(tmp_path) -> None:
    app = build_app(tmp_path)
    store = log_store_for(app.state.cyclone)
    text = "größer ✓\n".encode()
    writer = store.writer(LogRef(RUN, "build", "main"))
    async with serving(app) as url:
        ws_url = url.replace("http", "ws") + f"{RUN_PATH}/logstream?stage=build&container=main"
        async with websockets.connect(ws_url, additional_headers=auth()) as socket:
            writer.append(text[:3], 3)
            received = [await asyncio.wait_for(socket.recv(), 5)]
            writer.append(text[3:], len(text) - 3)
            writer.finish()
            received.append(await asyncio.wait_for(socket.recv(), 5))
    assert "".join(received) == "größer ✓\n"
