"""A whole `cyclone up` (embedded cluster, node agent on the host runtime, engine, REST
server with its log collector) in a thread of its own, for tests of the synchronous CLI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveUp:
    """A running `cyclone up`: its URL, data dir, admin token and the CLI config it wrote."""

    url: str
    data_dir: Path
    config: Path
    loop: asyncio.AbstractEventLoop
    cluster: Any
    holder: dict = field(repr=False, default_factory=dict)

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine in the server's event loop (e.g. on `self.cluster`)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def cli_env(self) -> dict[str, str]:
        """Environment for a `cyclone` subprocess that talks to this instance as admin."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("CYCLONE_SERVER", "CYCLONE_TENANT", "CYCLONE_TOKEN")}
        env["CYCLONE_CONFIG"] = str(self.config)
        return env

    def run_cli(self, *args: str, input: str | None = None, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """`cyclone ARGS…` as a real process with pipes (not a terminal)."""
        return subprocess.run(
            [sys.executable, "-m", "cyclone.cli.main", *args], input=input,
            capture_output=True, text=True, timeout=timeout,
            env={**self.cli_env(), **(env or {})},
        )


def cli(instance: LiveUp, *args: str, input: str | None = None) -> CompletedProcess:
    """`cyclone ARGS…` in this process (stdout is not a terminal), as a finished process."""
    from typer.testing import CliRunner

    from cyclone.cli.main import app

    result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False, env={
        "CYCLONE_CONFIG": str(instance.config), "CYCLONE_SERVER": None,
        "CYCLONE_TENANT": None, "CYCLONE_TOKEN": None})
    return CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def cli_ok(instance: LiveUp, *args: str, input: str | None = None) -> str:
    result = cli(instance, *args, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout


def shell_stage_manifest(project: str, name: str, script: str) -> str:
    """A Stage of `project` running `sh -c SCRIPT`, as a YAML document that starts with `---`."""
    return f"""\
---
kind: Stage
metadata: {{name: {name}, labels: {{project.cyclone.dev/name: {project}}}}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "{script}"]
"""


@contextlib.contextmanager
def live_up(data_dir: Path, *,
            before_serve: Callable[[Any], Awaitable[None]] | None = None) -> Iterator[LiveUp]:
    """Start `cyclone up` on `data_dir` and a free port; stop it on exit.

    `CYCLONE_CONFIG` points at ``data_dir/cli-config.yaml`` while it runs, so the config it
    writes never touches the user's. `before_serve(ctx)` runs in its loop before the API
    serves (to seed objects such as Secrets).
    """
    if not Path("/usr/bin/bwrap").exists() or shutil.which("sh") is None:
        pytest.skip("the host runtime needs bubblewrap")
    from cyclone.up import UpContext, UpOptions, up
    from cyclone.up_server import serve_api

    config = data_dir / "cli-config.yaml"
    previous_config = os.environ.get("CYCLONE_CONFIG")
    os.environ["CYCLONE_CONFIG"] = str(config)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    holder: dict = {}

    async def serve(ctx: UpContext) -> None:
        holder["cluster"] = ctx.cluster
        if before_serve is not None:
            await before_serve(ctx)
        await serve_api(ctx)

    async def main() -> None:
        holder["loop"] = asyncio.get_running_loop()
        holder["task"] = asyncio.current_task()
        await up(UpOptions(data_dir=str(data_dir), port=port, runtime="host",
                           open_control_cluster=False), serve=serve)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as err:  # reported when the server never answers
            holder["error"] = err

    thread = threading.Thread(target=run, name="cyclone-up", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthcheck", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if "error" in holder or time.monotonic() > deadline:
            raise RuntimeError(f"cyclone up did not start: {holder.get('error')!r}")
        time.sleep(0.1)
    try:
        yield LiveUp(url, data_dir, config, holder["loop"], holder["cluster"], holder)
    finally:
        holder["loop"].call_soon_threadsafe(holder["task"].cancel)
        thread.join(20)
        from support.sandboxes import kill_containers_under

        kill_containers_under(data_dir)
        if previous_config is None:
            os.environ.pop("CYCLONE_CONFIG", None)
        else:
            os.environ["CYCLONE_CONFIG"] = previous_config
