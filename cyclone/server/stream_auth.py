"""Streams that end when their caller's token is revoked: the check every long-lived
response (run stream, log streams, the pages' streams) repeats while it sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Request

from cyclone.kube import errors
from cyclone.server.auth import server_state, tenant_allowed

TOKEN_RECHECK_SECONDS = 15.0
"""Longest a stream goes on sending after its token is revoked, whatever heartbeat the
client asked for."""


def token_checker(request: Request, token: str, tenant: str
                  ) -> Callable[[], Awaitable[bool]]:
    """Whether `token` still reads `tenant` (not revoked), asked again at each heartbeat."""
    auth = server_state(request).auth

    async def still_allowed() -> bool:
        try:
            return tenant_allowed(await auth.authenticate(token), tenant)
        except errors.ApiError:
            return False

    return still_allowed


async def until_revoked(events: AsyncIterator[bytes],
                        still_allowed: Callable[[], Awaitable[bool]],
                        every: float | None = None) -> AsyncIterator[bytes]:
    """`events` until `still_allowed` says no, asked before sending once `every` seconds
    (default `TOKEN_RECHECK_SECONDS`) have passed since it last said yes; a quiet stream
    sends nothing meanwhile."""
    every = TOKEN_RECHECK_SECONDS if every is None else every
    loop = asyncio.get_running_loop()
    checked = loop.time()
    async for event in events:
        if loop.time() - checked >= every:
            if not await still_allowed():
                return
            checked = loop.time()
        yield event


def bearer_token(request: Request) -> str:
    """The token of the request's `Authorization: Bearer` header (already authenticated)."""
    return request.headers.get("authorization", "").strip().partition(" ")[2].strip()
