"""The engine's metrics port also answers `GET /healthz`: the liveness that the image's
HEALTHCHECK (`cyclone healthcheck`) and the chart's probes ask for, on a port every replica
serves whether or not it holds the Lease."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEALTH_PATH = "/healthz"


async def _answer(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes],
                  head: bool = False) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def with_healthz(app: ASGIApp) -> ASGIApp:
    """`app` with `GET /healthz` answering 200 "ok" in front of it."""

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != HEALTH_PATH:
            await app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _answer(send, 405, b"method not allowed\n", (b"allow", b"GET, HEAD"))
            return
        await _answer(send, 200, b"ok", head=method == "HEAD")

    return served


def metrics_app() -> ASGIApp:
    """Prometheus' `/metrics` of this process, and `/healthz`."""
    from prometheus_client import make_asgi_app

    return with_healthz(make_asgi_app())
