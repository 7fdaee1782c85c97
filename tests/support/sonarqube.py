"""A SonarQube stand-in on 127.0.0.1: the Web API calls Cyclone makes, answered as SonarQube
answers them.

- `GET /api/authentication/validate`: `{"valid": true}` for a known token sent as the basic
  user (`token:`), `{"valid": false}` otherwise (SonarQube answers 200 either way);
- `GET /api/qualitygates/project_status?projectKey=K`: the gate set for K, or 404.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


@dataclass
class SonarQube:
    url: str
    tokens: set[str]
    gates: dict[str, str]
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(path with query, token) of every request, in order."""


def _token(header: str | None) -> str | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user = base64.b64decode(header[6:]).decode()
    except ValueError:
        return None
    return user.split(":", 1)[0]


@contextlib.contextmanager
def sonarqube(tokens: set[str], gates: dict[str, str]) -> Iterator[SonarQube]:
    """Serve until the block ends; `tokens` are valid, `gates` maps project keys to their
    quality gate status."""
    state = SonarQube("", tokens, gates)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            token = _token(self.headers.get("Authorization"))
            state.requests.append((self.path, token))
            if parts.path == "/api/authentication/validate":
                self._answer(200, {"valid": token in state.tokens})
            elif token not in state.tokens:
                self._answer(401, {"errors": [{"msg": "Authentication required"}]})
            elif parts.path == "/api/qualitygates/project_status":
                key = (parse_qs(parts.query).get("projectKey") or [""])[0]
                if key not in state.gates:
                    self._answer(404, {"errors": [{"msg": f"Project '{key}' not found"}]})
                else:
                    self._answer(200, {"projectStatus": {
                        "status": state.gates[key],
                        "conditions": [{"status": "OK", "metricKey": "coverage"}],
                        "periods": [], "ignoredConditions": False}})
            else:
                self._answer(404, {"errors": [{"msg": "Unknown url"}]})

        def _answer(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
