"""`run --watch`, `watch` and `logs -f` follow the server's streams against a live
`cyclone up`: no read of the run is polled, and a connection dropped in the middle of a
stream is made again (with `Last-Event-ID` for the run stream) without losing or repeating
anything."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from support.live_up import LiveUp, cli_ok, live_up, shell_stage_manifest

from cyclone.cli.client import ServerEvent, parse_events
from cyclone.cli.watch import apply_change
from cyclone.server.run_stream import run_change

PROJECT = "wstream"
MANIFESTS = f"""\
kind: Project
metadata: {{name: {PROJECT}}}
{shell_stage_manifest(PROJECT, "nap", "sleep 2; echo rested")}\
{shell_stage_manifest(PROJECT, "count", "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.4; done")}\
{shell_stage_manifest(PROJECT, "boom", "echo broken; exit 3")}\
---
kind: Workflow
metadata: {{name: napping, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: nap}}]
---
kind: Workflow
metadata: {{name: counting, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: count}}]
---
kind: Workflow
metadata: {{name: broken, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: boom}}]
"""


def stage(phase: str, **extra: object) -> dict:
    return {"status": {"phase": phase, **extra}}


def test_a_change_applied_to_the_run_before_it_gives_the_run_after_it():
    before = {"metadata": {"name": "r", "resourceVersion": "1"},
              "spec": {"workflowRef": {"name": "w"}},
              "status": {"overall": {"phase": "Running"},
                         "stages": {"a": stage("Running"), "b": stage("Pending"),
                                    "gone": stage("Pending")}}}
    after = {"metadata": {"name": "r", "resourceVersion": "2"},
             "spec": {"workflowRef": {"name": "w"}},
             "status": {"overall": {"phase": "Failed"}, "completionTime": "t",
                        "stages": {"a": stage("Failed", reason="PodFailed"),
                                   "b": stage("Pending")}}}
    change = run_change(before, after)
    assert change is not None
    assert apply_change(before, change) == after


def test_the_event_stream_parser_reads_names_ids_data_and_keep_alives():
    lines = ["id: 7", "event: change", 'data: {"a":1}', "", ": keep-alive", "",
             "data: plain", "data: two", "", "event: end", "data: ", ""]
    assert list(parse_events(lines)) == [
        ServerEvent("change", '{"a":1}', "7"), ServerEvent(""),
        ServerEvent("message", "plain\ntwo"), ServerEvent("end", "")]


@dataclass
class CuttingProxy:
    """A TCP proxy on 127.0.0.1 in front of the server that records each request line (and
    its Last-Event-ID) and cuts the first connection whose request line contains `cut_path`
    once the server has sent the event holding `cut_after` on it."""

    upstream: tuple[str, int]
    cut_path: str
    cut_after: bytes
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    cuts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    _listener: socket.socket | None = None

    def serve(self) -> str:
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()

    def _accept(self, listener: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream)
        cutting: list[bool] = [False]
        threading.Thread(target=self._upward, args=(client, server, cutting),
                         daemon=True).start()
        seen = b""
        try:
            while chunk := server.recv(65536):
                if cutting[0]:
                    seen += chunk
                    end = seen.find(b"\n\n", seen.find(self.cut_after)) \
                        if self.cut_after in seen else -1
                    if end >= 0:
                        client.sendall(seen[:end + 2])
                        break
                    continue
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (client, server):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def _upward(self, client: socket.socket, server: socket.socket,
                cutting: list[bool]) -> None:
        try:
            while chunk := client.recv(65536):
                for head in re.findall(rb"(GET|POST|PUT) (\S+) HTTP/1.1\r\n(.*?)\r\n\r\n",
                                       chunk, re.S):
                    found = re.search(rb"(?im)^last-event-id: *(\S+)", head[2])
                    with self._lock:
                        self.requests.append((f"{head[0].decode()} {head[1].decode()}",
                                              found.group(1).decode() if found else None))
                        if self.cuts == 0 and self.cut_path in head[1].decode():
                            self.cuts = 1
                            cutting[0] = True
                server.sendall(chunk)
        except OSError:
            pass


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    with live_up(tmp_path_factory.mktemp("watch-stream")) as up:
        cli_ok(up, "apply", "-f", "-", input=MANIFESTS)
        yield up


@pytest.fixture
def proxied(instance: LiveUp) -> Iterator[Callable[[str, bytes], tuple[CuttingProxy, dict]]]:
    """Start a proxy in front of the instance: (the proxy, the CLI's environment through it)."""
    proxies: list[CuttingProxy] = []

    def start(cut_path: str, cut_after: bytes) -> tuple[CuttingProxy, dict]:
        host, port = instance.url.removeprefix("http://").split(":")
        proxies.append(CuttingProxy((host, int(port)), cut_path, cut_after))
        return proxies[-1], {"CYCLONE_SERVER": proxies[-1].serve(),
                             "CYCLONE_TOKEN": instance.token}

    yield start
    for proxy in proxies:
        proxy.close()


def test_run_watch_follows_the_stream_through_a_dropped_connection_without_polling(
        instance, proxied):
    proxy, env = proxied("/stream", b"event: snapshot")
    result = instance.run_cli("run", "napping", "-p", PROJECT, "--name", "napping-1",
                              "--watch", env=env)
    assert result.returncode == 0, result.stderr
    assert "nap: Running" in result.stdout
    assert result.stdout.rstrip().endswith("workflowrun/napping-1 Succeeded")
    run_path = f"/apis/v1alpha1/projects/{PROJECT}/workflows/napping/workflowruns/napping-1"
    streams = [(line, last_id) for line, last_id in proxy.requests
               if line.startswith(f"GET {run_path}/stream")]
    assert proxy.cuts == 1 and len(streams) >= 2, proxy.requests
    assert streams[0][1] is None and streams[1][1], streams
    assert not [line for line, _ in proxy.requests if line == f"GET {run_path}"], \
        proxy.requests


def test_watch_of_a_failed_run_exits_one_with_its_reason(instance, proxied):
    cli_ok(instance, "run", "broken", "-p", PROJECT, "--name", "broken-1")
    proxy, env = proxied("/nothing-is-cut", b"")
    watched = instance.run_cli("watch", "broken-1", "-p", PROJECT, env=env)
    assert watched.returncode == 1
    assert len(watched.stderr.strip().splitlines()) == 1
    assert watched.stderr.startswith("error: workflowrun broken-1 Failed: stage boom failed")
    run_path = f"/apis/v1alpha1/projects/{PROJECT}/workflows/broken/workflowruns/broken-1"
    reads = [line for line, _ in proxy.requests if line == f"GET {run_path}"]
    assert len(reads) <= 1, proxy.requests


def test_logs_follow_resumes_a_dropped_log_stream_without_repeating_lines(instance, proxied):
    cli_ok(instance, "run", "counting", "-p", PROJECT, "--name", "counting-1")
    proxy, env = proxied("/logstream/sse", b"data: line 2\n\n")
    result = instance.run_cli("logs", "counting-1", "-f", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(f"line {i}\n" for i in range(1, 7))
    assert proxy.cuts == 1
    logs = [line for line, _ in proxy.requests if "/logstream/sse" in line]
    assert len(logs) >= 2, proxy.requests
