"""Request limits enforced while a request is read, before any route sees it.

`RequestLimitsMiddleware` is a pure ASGI middleware (it never buffers more than a limit):

- a body on a route that needs a bearer token is refused with 401 before a byte of it is
  read when the request carries no `Authorization: Bearer <token>` that could be valid
  (artifact uploads also accept `X-Upload-Token`; SCM webhooks and delegation reports
  carry their own proof and are exempt);
- a `Content-Length` over the route's limit answers 413 at once; a chunked body is
  counted as it arrives and abandoned with 413 at the limit;
- a JSON body (content type JSON, or none; webhooks whatever their content type, since
  they are parsed as JSON) nested deeper than `max_json_depth` answers 422 before it is
  parsed, so no parser or validator ever recurses that deep.

Artifact uploads are streamed to disk by their route, so they are only counted here, with
their own limit; every other body is read whole (at most its limit) for the depth check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from cyclone.kube import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MIB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 1 * MIB
"""Below the 1.5 MiB etcd accepts for one object, so any accepted body can be stored."""
DEFAULT_MAX_ARTIFACT_BYTES = 1024 * MIB
DEFAULT_MAX_WEBHOOK_BYTES = 25 * MIB
"""GitHub's own cap on a webhook delivery."""
DEFAULT_MAX_JSON_DEPTH = 64
MAX_TOKEN_CHARS = 4096

API_PREFIX = "/apis/v1alpha1"
_ARTIFACT_UPLOAD = re.compile(
    r"^/projects/[^/]+/workflows/[^/]+/workflowruns/[^/]+/artifacts(/[^/]+)?/?$")
_WEBHOOK = re.compile(r"^/tenants/[^/]+/webhook/?$")
_DELEGATION_REPORT = re.compile(
    r"^(/delegations/[^/]+/[^/]+/[^/]+|/workflowruns/[^/]+/stages/[^/]+/result)/?$")
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


class PayloadTooLarge(errors.ApiError):
    code = 413
    reason = "RequestEntityTooLarge"


@dataclass(frozen=True)
class RequestLimits:
    """How much a request may carry; see the module docstring."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES
    max_webhook_bytes: int = DEFAULT_MAX_WEBHOOK_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_artifact_bytes", "max_webhook_bytes",
                     "max_json_depth"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


class BodyKind:
    OBJECT = "object"
    """A JSON body read whole: `max_body_bytes`, depth-checked, bearer token required."""
    ARTIFACT = "artifact"
    """Streamed by its route: `max_artifact_bytes`, bearer or upload token required."""
    WEBHOOK = "webhook"
    """Signed by the SCM: `max_webhook_bytes`, depth-checked, no token."""
    SELF_AUTHORISED = "self-authorised"
    """Carries its own proof (delegation reports): `max_body_bytes`, depth-checked."""
    PUBLIC = "public"
    """Outside the API (health, docs): `max_body_bytes`, no token."""


def body_kind(method: str, path: str) -> str:
    """What kind of body a request to `path` carries (decides its limit and auth check)."""
    if not path.startswith(API_PREFIX + "/"):
        return BodyKind.PUBLIC
    rest = path[len(API_PREFIX):]
    if method == "POST" and _ARTIFACT_UPLOAD.match(rest):
        return BodyKind.ARTIFACT
    if _WEBHOOK.match(rest):
        return BodyKind.WEBHOOK
    if _DELEGATION_REPORT.match(rest):
        return BodyKind.SELF_AUTHORISED
    return BodyKind.OBJECT


def limit_for(kind: str, limits: RequestLimits) -> int:
    if kind == BodyKind.ARTIFACT:
        return limits.max_artifact_bytes
    if kind == BodyKind.WEBHOOK:
        return limits.max_webhook_bytes
    return limits.max_body_bytes


def bearer_problem(headers: dict[str, str], kind: str) -> str | None:
    """Why a request of `kind` certainly cannot be authenticated, or None when its
    credentials look usable (the route still checks them)."""
    if kind not in (BodyKind.OBJECT, BodyKind.ARTIFACT):
        return None
    if kind == BodyKind.ARTIFACT and _looks_like_token(headers.get("x-upload-token", "")):
        return None
    authorization = headers.get("authorization", "")
    if not authorization.strip():
        return "missing Authorization: Bearer token"
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not _looks_like_token(token):
        return "expected Authorization: Bearer <token>"
    return None


def _looks_like_token(token: str) -> bool:
    token = token.strip()
    return 0 < len(token) <= MAX_TOKEN_CHARS and " " not in token


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether `body` (JSON text) nests arrays/objects deeper than `max_depth`.

    Strings are skipped whole, so brackets inside them do not count; malformed text is
    left for the JSON parser to refuse.
    """
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    depth = 0
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return True
        elif token in (b"]", b"}"):
            depth = max(depth - 1, 0)
    return False


def _is_json(headers: dict[str, str]) -> bool:
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return not content_type or content_type.endswith(("/json", "+json"))


def _error_response(code: int, reason: str, message: str) -> tuple[dict, bytes]:
    body = json.dumps({"message": message, "reason": reason}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if code == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    return {"type": "http.response.start", "status": code, "headers": headers}, body


class RequestLimitsMiddleware:
    """Enforces `RequestLimits` on every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: RequestLimits | None = None) -> None:
        self.app = app
        self.limits = limits or RequestLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers") or ()}
        length_header = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length_header is None and not chunked:
            await self.app(scope, receive, send)
            return
        try:
            declared = int(length_header) if length_header is not None else None
        except ValueError:
            await _refuse(send, 400, "BadRequest", "invalid Content-Length")
            return
        if declared == 0 and not chunked:
            await self.app(scope, receive, send)
            return
        kind = body_kind(scope.get("method", "GET"), scope.get("path", ""))
        problem = bearer_problem(headers, kind)
        if problem is not None:
            await _refuse(send, 401, "Unauthorized", problem)
            return
        limit = limit_for(kind, self.limits)
        if declared is not None and declared > limit:
            await _refuse(send, 413, PayloadTooLarge.reason, _too_large(limit))
            return
        if kind == BodyKind.ARTIFACT:
            await self._counted(scope, receive, send, limit)
            return
        await self._buffered(scope, receive, send, limit,
                             check_depth=kind == BodyKind.WEBHOOK or _is_json(headers))

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Pass the body through as it arrives, failing the read past `limit`."""
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(_too_large(limit))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge as exc:
            if started:
                raise
            await _refuse(send, 413, exc.reason, exc.message)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send, limit: int,
                        *, check_depth: bool) -> None:
        """Read the whole body (at most `limit` bytes), check it, then hand it on."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, 413, PayloadTooLarge.reason, _too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        if check_depth and json_depth_exceeds(body, self.limits.max_json_depth):
            await _refuse(send, 422, "Invalid", f"the JSON body nests deeper than "
                          f"{self.limits.max_json_depth} levels")
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


async def _refuse(send: Send, code: int, reason: str, message: str) -> None:
    start, body = _error_response(code, reason, message)
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
