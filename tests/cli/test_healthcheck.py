"""`cyclone healthcheck`, the image's HEALTHCHECK, against live local HTTP servers: exit 0
when one URL answers 200, else 1, and one line on stderr either way; the image's command
(scripts/images/cyclone-command) answers it without loading the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cyclone.cli.health import DEFAULT_URLS

REPO = Path(__file__).resolve().parents[2]
IMAGE_COMMAND = REPO / "scripts" / "images" / "cyclone-command"
COMMANDS = {
    "cli": [sys.executable, "-m", "cyclone.cli.main", "healthcheck"],
    "image": [sys.executable, str(IMAGE_COMMAND), "healthcheck"],
}


class Answers(BaseHTTPRequestHandler):
    """`/<status>` answers that status; `/slow` answers nothing until the server stops."""

    stop = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.stop.wait(30)
            return
        status = int(self.path.strip("/"))
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        Answers.stop.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def closed_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/healthz"


def healthcheck(how: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMANDS[how], *args], capture_output=True, text=True, timeout=60,
                          cwd=REPO)


@pytest.mark.parametrize("how", sorted(COMMANDS))
def test_200_is_healthy_with_one_line_on_stderr(server: str, how: str) -> None:
    done = healthcheck(how, "--url", f"{server}/200")
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == f"healthy: {server}/200 answered 200\n"


@pytest.mark.parametrize("how", sorted(COMMANDS))
def test_500_and_refused_are_unhealthy_in_one_line(server: str, closed_url: str,
                                                    how: str) -> None:
    done = healthcheck(how, "--url", f"{server}/500", "--url", closed_url)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"unhealthy: {server}/500: HTTP 500; "
                           f"{closed_url}: connection refused\n")


def test_one_healthy_url_of_several_is_enough(server: str, closed_url: str) -> None:
    done = healthcheck("image", "--url", closed_url, "--url", f"{server}/503",
                       "--url", f"{server}/200")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"healthy: {server}/200 answered 200\n"


def test_a_server_that_does_not_answer_is_unhealthy_after_the_timeout(server: str) -> None:
    done = healthcheck("image", "--url", f"{server}/slow", "--timeout", "0.5")
    assert done.returncode == 1
    assert done.stderr == f"unhealthy: {server}/slow: no answer within 0.5s\n"


def test_a_success_other_than_200_is_unhealthy(server: str) -> None:
    done = healthcheck("image", "--url", f"{server}/204")
    assert (done.returncode, done.stderr) == (1, f"unhealthy: {server}/204: HTTP 204\n")


def test_no_url_asks_the_server_then_the_engine() -> None:
    assert DEFAULT_URLS == ("http://127.0.0.1:7099/healthcheck",
                            "http://127.0.0.1:9090/healthz")


@pytest.mark.parametrize("how", sorted(COMMANDS))
def test_a_url_that_is_not_http_is_a_usage_error(how: str) -> None:
    done = healthcheck(how, "--url", "file:///etc/passwd")
    assert done.returncode == 2
    assert "not an http(s) URL: 'file:///etc/passwd'" in done.stderr


def test_the_image_command_answers_without_loading_the_cli(server: str) -> None:
    probe = (f"import runpy, sys; sys.argv = ['cyclone', 'healthcheck', '--url', "
             f"'{server}/200']\ntry:\n    runpy.run_path({str(IMAGE_COMMAND)!r})\n"
             f"except SystemExit as done:\n    print(done.code, sorted(m for m in sys.modules "
             f"if m.split('.')[0] in ('typer', 'click', 'rich', 'pydantic', 'httpx')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.stdout == "0 []\n", done.stderr
