"""The log setup of Cyclone's long-running commands: `extra=` fields in both formats, levels,
and uvicorn's own lines through the same handler."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from support.live_up import free_port
from typer.testing import CliRunner

from cyclone.cli.logsetup import configure_logging
from cyclone.cli.main import app
from cyclone.server import serve
from cyclone.up import listen


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Restores the root logger and the chatty loggers after a test reconfigures them."""
    root = logging.getLogger()
    names = ("httpx", "uvicorn.access", "uvicorn.error", "uvicorn.asgi")
    saved = (root.handlers[:], root.level,
             {n: (logging.getLogger(n).level, logging.getLogger(n).propagate,
                  logging.getLogger(n).handlers[:]) for n in names})
    yield io.StringIO()
    root.handlers[:], root.level = saved[0], saved[1]
    for name, (level, propagate, handlers) in saved[2].items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = propagate
        logger.handlers[:] = handlers


def test_extra_fields_become_json_keys(captured) -> None:
    configure_logging("info", "json", stream=captured)
    logging.getLogger("cyclone.engine.runs").info(
        "run ended", extra={"run": "build-1", "namespace": "cyclone-p", "phase": "Failed",
                            "duration_seconds": 4.25, "stages": ["a", "b"]})
    logging.getLogger("cyclone.engine").debug("not shown")
    [line] = captured.getvalue().splitlines()
    record = json.loads(line)
    assert record.pop("time").endswith("Z")
    assert record == {"level": "INFO", "logger": "cyclone.engine.runs", "message": "run ended",
                      "run": "build-1", "namespace": "cyclone-p", "phase": "Failed",
                      "duration_seconds": 4.25, "stages": ["a", "b"]}


def test_extra_fields_become_key_value_suffixes_in_text(captured) -> None:
    configure_logging("debug", "text", stream=captured)
    logging.getLogger("cyclone.engine.runs").debug(
        "run %s ended", "build-1",
        extra={"run": "build-1", "phase": "Failed", "reason": 'stage "b" failed',
               "duration_seconds": None})
    [line] = captured.getvalue().splitlines()
    stamp, rest = line.split(" ", 1)
    assert stamp.endswith("Z")
    assert rest == ('DEBUG cyclone.engine.runs: run build-1 ended run=build-1 phase=Failed '
                    'reason="stage \\"b\\" failed"')


def test_a_traceback_stays_inside_its_json_line(captured) -> None:
    configure_logging("info", "json", stream=captured)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("cyclone.up").exception("failed", extra={"run": "r"})
    [line] = captured.getvalue().splitlines()
    record = json.loads(line)
    assert record["run"] == "r"
    assert "RuntimeError: boom" in record["exc_info"]


def test_the_level_hides_less_severe_lines(captured) -> None:
    configure_logging("warning", "text", stream=captured)
    logging.getLogger("cyclone.engine").info("hidden")
    logging.getLogger("cyclone.engine").warning("shown")
    assert [line.split(" ", 1)[1] for line in captured.getvalue().splitlines()] == [
        "WARNING cyclone.engine: shown"]


@pytest.mark.parametrize("level", ["debug", "info"])
def test_uvicorn_lines_go_through_the_same_formatter_and_requests_only_at_debug(
        captured, level) -> None:
    configure_logging(level, "json", stream=captured)
    web = FastAPI()

    @web.get("/ping")
    def ping() -> dict:
        return {"ok": True}

    port = free_port()

    async def main() -> None:
        server = asyncio.create_task(serve(web, "127.0.0.1", port,
                                           sock=listen("127.0.0.1", port)))
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/ping")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)

    asyncio.run(main())
    records = [json.loads(line) for line in captured.getvalue().splitlines()]
    loggers = {r["logger"] for r in records}
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    if level == "debug":
        assert "uvicorn.error" in loggers
        assert any("GET /ping" in r["message"] for r in access), records
    else:
        assert access == [] and "uvicorn.error" not in loggers, records


@pytest.mark.parametrize("command", ["engine", "server", "node"])
def test_the_parts_refuse_an_unknown_log_level_in_one_line(command) -> None:
    result = CliRunner().invoke(app, [command, "--log-level", "loud",
                                      "--embedded", "/nonexistent/x.db"])
    assert result.exit_code == 1
    assert result.stderr == (f"error: cyclone {command}: unknown log level 'loud' (one of: "
                             "debug, info, warning, error)\n")
