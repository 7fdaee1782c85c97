"""A minimal SMTP server on 127.0.0.1 that records the messages it accepts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def smtp_server() -> AsyncIterator[tuple[int, list[str]]]:
    """Just enough SMTP to accept one message; yields (port, received DATA bodies)."""
    messages: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 test ESMTP\r\n")
        while line := await reader.readline():
            command = line.decode().strip().upper()
            if command.startswith(("EHLO", "HELO")):
                writer.write(b"250 test\r\n")
            elif command == "DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                body = []
                while (data := (await reader.readline()).decode()) not in (".\r\n", ""):
                    body.append(data)
                messages.append("".join(body))
                writer.write(b"250 queued\r\n")
            elif command == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], messages
