"""A tiny HTTP receiver on 127.0.0.1 that records the JSON bodies POSTed to it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Receiver:
    url: str
    bodies: list[dict] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    """The headers of each request (names in lower case), in the order of `bodies`."""
    senders_gone: list[bool] = field(default_factory=list)
    """Whether each request's sender had closed its end (it died) before it was read."""
    status: int = 200
    reply: bytes = b"{}"
    """The body of every answer."""
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    on_request: Callable[[int], Awaitable[None]] | None = None
    """Awaited with the request's index once it is recorded, before it is answered."""

    async def wait_for(self, count: int, within: float = 10.0) -> list[dict]:
        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.bodies) >= count)

        await asyncio.wait_for(enough(), within)
        return self.bodies


def _peer_closed(writer: asyncio.StreamWriter) -> bool:
    """Whether the other end has closed the connection (read without consuming)."""
    sock = writer.get_extra_info("socket")
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as peek:
            return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


@asynccontextmanager
async def http_receiver(status: int = 200) -> AsyncIterator[Receiver]:
    receiver = Receiver(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode().strip()
            if not request_line:
                return
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            async with receiver.arrived:
                index = len(receiver.raw)
                receiver.raw.append((request_line, body))
                receiver.headers.append(headers)
                receiver.senders_gone.append(_peer_closed(writer))
                try:
                    receiver.bodies.append(json.loads(body or b"{}"))
                except ValueError:
                    receiver.bodies.append({})
                receiver.arrived.notify_all()
            if receiver.on_request is not None:
                await receiver.on_request(index)
            writer.write(
                f"HTTP/1.1 {receiver.status} OK\r\nContent-Length: {len(receiver.reply)}\r\n"
                "Connection: close\r\n\r\n".encode() + receiver.reply
            )
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    receiver.status = status
    async with server:
        yield receiver
