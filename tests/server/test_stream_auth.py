"""A long-lived response stops sending once its token is revoked."""

from __future__ import annotations

import asyncio

from cyclone.server.stream_auth import until_revoked


async def _ticks(count: int, pause: float):
    for n in range(count):
        yield f"{n}".encode()
        await asyncio.sleep(pause)


async def test_a_stream_ends_at_the_first_check_after_its_token_is_revoked() -> None:
    allowed = {"yes": True}
    asked = []

    async def still_allowed() -> bool:
        asked.append(len(asked))
        return allowed["yes"]

    got = []
    async for event in until_revoked(_ticks(100, 0.01), still_allowed, every=0.05):
        got.append(event)
        if len(got) == 10:
            allowed["yes"] = False
    assert 10 <= len(got) < 20
    assert asked


async def test_a_stream_whose_token_holds_sends_everything_and_asks_only_every_period(
        ) -> None:
    asked = []

    async def still_allowed() -> bool:
        asked.append(1)
        return True

    got = [e async for e in until_revoked(_ticks(20, 0.01), still_allowed, every=0.1)]
    assert len(got) == 20
    assert 0 < len(asked) <= 3
