"""Streams that end when their caller's token is revoked: the check every long-lived
response (run stream, log streams, the pages' streams) repeats while it sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Request

from cyclone.kube import errors
from cyclone.server.auth import server_state, tenant_allowed

StillAllowed = Callable[[], Awaitable[bool]]
TOKEN_RECHECK_SECONDS = 15.0
"""Longest a stream goes on sending after its token is revoked, whatever heartbeat the
client asked for."""


def token_checker(request: Request, token: str, tenant: str) -> StillAllowed:
    """Whether `token` still reads `tenant` (not revoked), asked again at each heartbeat."""
    auth = server_state(request).auth

    async def still_allowed() -> bool:
        try:
            return tenant_allowed(await auth.authenticate(token), tenant)
        except errors.ApiError:
            return False

    return still_allowed


class AllowedEvery:
    """`still_allowed` (whether the caller's token still reads its tenant) asked at most
    once per `interval`, and at least every `TOKEN_RECHECK_SECONDS` whatever interval the
    client chose: a stream asks before each keep-alive and, while events keep coming, again
    once the interval has passed."""

    def __init__(self, still_allowed: StillAllowed | None, interval: float) -> None:
        self.still_allowed = still_allowed
        self.interval = min(interval, TOKEN_RECHECK_SECONDS)
        self.checked = asyncio.get_running_loop().time()

    async def __call__(self, *, due: bool = False) -> bool:
        """`due`: ask now (a keep-alive interval passed without events)."""
        if self.still_allowed is None:
            return True
        loop = asyncio.get_running_loop()
        if not due and loop.time() - self.checked < self.interval:
            return True
        self.checked = loop.time()
        return await self.still_allowed()


async def until_revoked(events: AsyncIterator[bytes], still_allowed: StillAllowed,
                        every: float | None = None) -> AsyncIterator[bytes]:
    """`events` until `still_allowed` says no, asked before sending once `every` seconds
    (default `TOKEN_RECHECK_SECONDS`) have passed since it last said yes; a quiet stream
    sends nothing meanwhile."""
    allowed = AllowedEvery(still_allowed, TOKEN_RECHECK_SECONDS if every is None else every)
    async for event in events:
        if not await allowed():
            return
        yield event


def bearer_token(request: Request) -> str:
    """The token of the request's `Authorization: Bearer` header (already authenticated)."""
    return request.headers.get("authorization", "").strip().partition(" ")[2].strip()
