"""A stand-in for an SCM provider's REST API on 127.0.0.1: records every request and
answers JSON (``{"id": N}`` for hook creation)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class ScmStandIn:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    status: int = 200
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    next_hook_id: int = 41

    async def wait_for(self, count: int, within: float = 10.0) -> list[Request]:
        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.requests) >= count)

        await asyncio.wait_for(enough(), within)
        return self.requests

    def answer(self, method: str, path: str) -> dict:
        if method == "POST" and path.endswith("/hooks"):
            self.next_hook_id += 1
            return {"id": self.next_hook_id}
        return {"state": "ok"}


@asynccontextmanager
async def scm_stand_in(status: int = 200) -> AsyncIterator[ScmStandIn]:
    stand_in = ScmStandIn(status=status)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            raw = await reader.readexactly(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            answer = json.dumps(stand_in.answer(method, path)).encode()
            writer.write(f"HTTP/1.1 {stand_in.status} X\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
                         + answer)
            await writer.drain()
            async with stand_in.arrived:
                stand_in.requests.append(Request(method, path, headers, body))
                stand_in.arrived.notify_all()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    stand_in.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with server:
            yield stand_in
    finally:
        server.close()
