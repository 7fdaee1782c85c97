"""The CLI's HTTP client: every failure becomes a `CliError` holding one line for a person."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from cyclone.api import keys
from cyclone.cli.config import CliSettings
from cyclone.cli.errors import CliError

API_PREFIX = "/apis/v1alpha1"


def _causes_of(response: httpx.Response) -> list[dict]:
    try:
        details = response.json().get("details")
    except (ValueError, AttributeError):
        return []
    causes = details.get("causes") if isinstance(details, dict) else details
    return [c for c in causes if isinstance(c, dict)] if isinstance(causes, list) else []


def _message_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    text = response.text.strip().splitlines()
    return text[0] if text else f"HTTP {response.status_code}"


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event; a keep-alive comment is the event named ""."""

    event: str
    data: str = ""
    id: str | None = None


def parse_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The events of the lines of a text/event-stream."""
    event, data, event_id = "message", [], None
    for line in lines:
        if not line:
            if data:
                yield ServerEvent(event, "\n".join(data), event_id)
            event, data, event_id = "message", [], None
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if not field:
            yield ServerEvent("")
        elif field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


class CycloneClient:
    """Talks to `/apis/v1alpha1` of one server as one tenant."""

    def __init__(self, settings: CliSettings, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        from cyclone import __version__

        headers = {"Accept": "application/json", "User-Agent": f"cyclone-cli/{__version__}"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        if settings.tenant:
            headers["X-Tenant"] = settings.tenant
        self._http = httpx.Client(base_url=settings.server, headers=headers, timeout=timeout,
                                  transport=transport)

    @property
    def tenant(self) -> str:
        """The tenant requests act in: --tenant, else the one a tenant token names (a
        token ``cyt.<tenant>.…``), else the default tenant."""
        if self.settings.tenant:
            return self.settings.tenant
        parts = (self.settings.token or "").split(".")
        return parts[1] if len(parts) == 4 and parts[0] == "cyt" else keys.DEFAULT_TENANT

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CycloneClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def unreachable(self, err: Exception) -> CliError:
        """The one line saying the server could not be reached (or dropped the connection)."""
        return CliError(
            f"cannot reach the Cyclone server at {self.settings.server}: "
            "is `cyclone up` running?"
        ) if isinstance(err, httpx.ConnectError) else CliError(
            f"talking to the Cyclone server at {self.settings.server}: {err}"
        )

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        message = _message_of(response)
        if response.status_code == 401:
            message = f"not authorised: {message} (set --token or CYCLONE_TOKEN)"
        raise CliError(message, status=response.status_code, causes=_causes_of(response))

    def request(self, method: str, path: str, *, params: dict | None = None,
                json: Any = None, api: bool = True, every_tenant: bool = False) -> Any:
        """Send a request; the decoded JSON answer (None when there is no body).

        ``every_tenant``: send no ``X-Tenant`` (the admin's lists across tenants, which a
        tenant named by the context would narrow)."""
        url = f"{API_PREFIX}{path}" if api else path
        try:
            request = self._http.build_request(method, url, params=params, json=json)
            if every_tenant:
                request.headers.pop("X-Tenant", None)
            response = self._http.send(request)
        except httpx.HTTPError as err:
            raise self.unreachable(err) from err
        self._check(response)
        if not response.content:
            return None
        if "json" not in response.headers.get("content-type", ""):
            return response.text
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items()
                                                 if v is not None} or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def items(self, path: str, *, every_tenant: bool = False) -> list[dict]:
        """Every item of a list route (of every tenant's, sent with no ``X-Tenant``)."""
        answer = self.request("GET", path, every_tenant=every_tenant)
        if isinstance(answer, dict):
            return list(answer.get("items") or [])
        return list(answer or [])

    def text(self, path: str, **params: Any) -> str:
        try:
            response = self._http.get(f"{API_PREFIX}{path}", params={
                k: v for k, v in params.items() if v is not None}, headers={"Accept": "*/*"})
        except httpx.HTTPError as err:
            raise self.unreachable(err) from err
        return self._check(response).text

    def download(self, path: str, write: Callable[[bytes], object], *,
                 progress: Callable[[int, int | None], None] | None = None) -> int:
        """Stream a binary answer into ``write``; the number of bytes. ``progress(done,
        total)`` is told after each chunk (total None when the server does not say)."""
        try:
            with self._http.stream("GET", f"{API_PREFIX}{path}", headers={"Accept": "*/*"},
                                   timeout=httpx.Timeout(30, read=300)) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                total = int(response.headers.get("content-length") or 0) or None
                done = 0
                for chunk in response.iter_bytes():
                    write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except httpx.HTTPError as err:
            raise self.unreachable(err) from err
        return done

    def upload(self, path: str, content: Iterable[bytes], *, size: int | None = None,
               params: dict | None = None) -> Any:
        """POST ``content`` as the raw request body; the decoded JSON answer."""
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        try:
            response = self._http.post(f"{API_PREFIX}{path}", content=content, params=params,
                                       headers=headers, timeout=httpx.Timeout(30, write=300))
        except httpx.HTTPError as err:
            raise self.unreachable(err) from err
        self._check(response)
        return response.json() if response.content else None

    def server_events(self, path: str, params: dict | None = None, *,
                      last_event_id: str | None = None,
                      read_timeout: float | None = None) -> Iterator[ServerEvent]:
        """The events of a Server-Sent Events stream until the server closes it.

        An error answer raises `CliError`; a connection that fails or drops raises the
        `httpx.HTTPError` (the caller decides whether to reconnect)."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        with self._http.stream(
            "GET", f"{API_PREFIX}{path}", params={k: v for k, v in (params or {}).items()
                                                   if v is not None},
            headers=headers, timeout=httpx.Timeout(30, read=read_timeout),
        ) as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            yield from parse_events(response.iter_lines())
