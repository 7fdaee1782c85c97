"""A tiny HTTP receiver on 127.0.0.1 that records the JSON bodies POSTed to it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Receiver:
    url: str
    bodies: list[dict] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)
    status: int = 200
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, count: int, within: float = 10.0) -> list[dict]:
        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.bodies) >= count)

        await asyncio.wait_for(enough(), within)
        return self.bodies


@asynccontextmanager
async def http_receiver(status: int = 200) -> AsyncIterator[Receiver]:
    receiver = Receiver(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode().strip()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            writer.write(
                f"HTTP/1.1 {receiver.status} OK\r\nContent-Length: 2\r\n"
                "Connection: close\r\n\r\n{}".encode()
            )
            await writer.drain()
            async with receiver.arrived:
                receiver.raw.append((request_line, body))
                try:
                    receiver.bodies.append(json.loads(body or b"{}"))
                except ValueError:
                    receiver.bodies.append({})
                receiver.arrived.notify_all()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    receiver.status = status
    async with server:
        yield receiver
