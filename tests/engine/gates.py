"""Gates a stage waits on until the test opens them.

A stage runs sandboxed: it sees none of the test's files, but shares the host's network, so a
gate is a URL on a small HTTP server of the test process that answers 200 once opened.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
import uuid
from pathlib import Path

_opened: set[str] = set()
_counts: dict[str, int] = {}
_journals: dict[str, list[str]] = {}
_server: http.server.ThreadingHTTPServer | None = None
_lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        body = b""
        journal, _, entry = name.partition("/")
        with _lock:
            if journal in _journals and entry:
                _journals[journal].append(entry)
                body = b"ok"
            elif name in _counts:
                _counts[name] += 1
                body = str(_counts[name]).encode()
        self.send_response(200 if name in _opened or body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _port() -> int:
    global _server
    with _lock:
        if _server is None:
            _server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            threading.Thread(target=_server.serve_forever, daemon=True).start()
        return _server.server_address[1]


class Gate:
    """`touch()` opens it (the name follows the file gates it replaced)."""

    def __init__(self) -> None:
        self.name = uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{_port()}/{self.name}"

    def touch(self) -> None:
        _opened.add(self.name)

    def check(self) -> str:
        """A shell condition that holds once the gate is open."""
        return f"curl -fso /dev/null {self.url}"


class Counter:
    """A URL that answers how many times it was fetched (1 the first time)."""

    def __init__(self) -> None:
        self.name = uuid.uuid4().hex
        _counts[self.name] = 0
        self.url = f"http://127.0.0.1:{_port()}/{self.name}"


class Journal:
    """A URL under which every fetch of `<url>/<entry>` appends `entry`, in the order the
    fetches arrived: stages note what they did, and the test reads the order."""

    def __init__(self) -> None:
        self.name = uuid.uuid4().hex
        _journals[self.name] = []
        self.url = f"http://127.0.0.1:{_port()}/{self.name}"

    def note(self, entry: str) -> str:
        """A shell command that appends `entry` and fails unless it was recorded."""
        return f"curl -fso /dev/null {self.url}/{entry}"

    @property
    def entries(self) -> list[str]:
        with _lock:
            return list(_journals[self.name])


def serve_git_repository(repo: Path, where: Path) -> str:
    """A bare copy of `repo` under `where`, served read-only over (dumb) HTTP; its URL.

    A sandboxed stage cannot read the test's files, but can clone over the network.
    """
    bare = where / f"{repo.name}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    handler = functools.partial(_QuietFiles, directory=str(where))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/{bare.name}"


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
