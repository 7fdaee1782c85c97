"""A real uvicorn server on 127.0.0.1 over an EmbeddedCluster, in a thread of its own."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from fastapi import APIRouter

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app, serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(data_dir: Path, admin_token: str,
                extra_routers: Sequence[APIRouter] = ()) -> Iterator[str]:
    """Serve the API (with `extra_routers`) until the block ends; yields the base URL."""
    port = free_port()
    ready = threading.Event()
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        cluster = EmbeddedCluster(data_dir / "cluster.db", poll_interval=0.01)
        await cluster.start()
        try:
            async def lookup(_: dict) -> EmbeddedCluster:
                return cluster

            app = create_app(cluster=cluster, data_dir=data_dir, admin_token=admin_token,
                             clusters=lookup, server_url=f"http://127.0.0.1:{port}",
                             extra_routers=extra_routers)
            async with asyncio.TaskGroup() as group:
                server = group.create_task(serve(app, "127.0.0.1", port))
                while not ready.is_set():
                    await asyncio.sleep(0.02)
                    with suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                        ready.set()
                await stop.wait()
                server.cancel()
        finally:
            await cluster.close()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the test thread
            failure.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="cyclone-live-server", daemon=True)
    thread.start()
    if not ready.wait(30) or failure:
        raise RuntimeError(f"server did not start: {failure}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
