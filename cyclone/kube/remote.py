"""`RemoteCluster`: the Cluster protocol over a real Kubernetes API server.

lightkube reads the configuration (kubeconfig, in-cluster service account, or an explicit
server with token/TLS) and supplies the connection parameters of its HTTP client (server,
TLS context, token/basic/exec auth); requests go through that client as plain JSON on the
REST paths of each Kind. lightkube's typed resource API is not used: it wants a model class
per kind, while the protocol deals in dicts of any kind of `cyclone.kube.kinds` (the Cyclone
CRDs included), and watches and followed logs need the raw streams anyway.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import httpx2
from lightkube.config.client_adapter import ConnectionParams

from cyclone.kube import bounded_json, remote_config
from cyclone.kube.errors import Invalid, Unavailable, error_from_status
from cyclone.kube.kinds import Kind, kind_of
from cyclone.kube.metrics import REMOTE, count_request
from cyclone.kube.protocol import ObjectList, PatchType, WatchEvent
from cyclone.kube.remote_ratelimit import TokenBucket
from cyclone.kube.remote_rest import (
    PATCH_CONTENT_TYPES,
    clean_params,
    error_for_response,
    lingers,
    resource_path,
    retry_after,
    with_resource_version,
)

LIST_PAGE_SIZE = 500
DEFAULT_QPS = 50.0
DEFAULT_BURST = 100
MAX_RETRIES = 5


class RemoteCluster:
    """A Kubernetes API server seen through the Cluster protocol.

    `qps`/`burst` throttle requests on the client side (a token bucket, `qps <= 0`
    disables it); `timeout` bounds every request but the read side of watches and
    followed logs. The connection pool has no cap, since every open watch and followed
    log holds a connection of its own. As client-go does, a request answered 429 (or 5xx)
    with a Retry-After header is retried after that delay, up to `max_retries` times.
    """

    def __init__(
        self,
        config: remote_config.SingleConfig,
        *,
        name: str | None = None,
        qps: float = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
        timeout: float = 30.0,
        field_manager: str = "cyclone",
        max_retries: int = MAX_RETRIES,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name or config.context_name or "kubernetes"
        self.server = config.cluster.server
        self.namespace = config.namespace
        self._field_manager = field_manager
        self.rate_limiter = TokenBucket(qps, burst)
        self.list_page_size = LIST_PAGE_SIZE
        self.max_retries = max_retries
        self._timeout = httpx2.Timeout(timeout)
        self._stream_timeout = httpx2.Timeout(timeout, read=None)
        params = ConnectionParams(timeout=self._timeout, transport=transport).httpx_params(config)
        self._http = httpx2.AsyncClient(
            **params,
            limits=httpx2.Limits(max_connections=None, max_keepalive_connections=32),
            headers={"User-Agent": "cyclone"},
        )

    @classmethod
    def from_kubeconfig(
        cls, path: str | Path, context: str | None = None, **options: Any
    ) -> RemoteCluster:
        return cls(remote_config.config_from_kubeconfig(path, context), **options)

    @classmethod
    def in_cluster(
        cls, service_account_dir: str | Path | None = None, **options: Any
    ) -> RemoteCluster:
        return cls(remote_config.config_in_cluster(service_account_dir), **options)

    @classmethod
    def from_credential(cls, credential: dict, **options: Any) -> RemoteCluster:
        """From an ExecutionCluster `spec.credential` (see `remote_config`)."""
        return cls(remote_config.config_from_credential(credential), **options)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RemoteCluster:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        for attempt in range(self.max_retries + 1):
            await self.rate_limiter.acquire()
            try:
                response = await self._http.request(
                    method, path, params=clean_params(params), content=content, headers=headers
                )
            except httpx2.HTTPError as exc:
                count_request(REMOTE, method, "error")
                raise Unavailable(f"{self.name}: {method} {path}: {exc!r}") from exc
            count_request(REMOTE, method, response.status_code)
            delay = retry_after(response)
            if delay is None or attempt == self.max_retries:
                break
            await asyncio.sleep(delay)
        if response.status_code >= 400:
            raise error_for_response(response.status_code, response.content)
        try:
            return response.status_code, bounded_json.loads(response.content) \
                if response.content else None
        except ValueError as exc:
            raise Unavailable(f"{self.name}: {method} {path}: answer is not JSON") from exc

    @asynccontextmanager
    async def _stream(
        self, path: str, params: dict[str, Any]
    ) -> AsyncIterator[httpx2.Response]:
        await self.rate_limiter.acquire()
        request = self._http.build_request(
            "GET", path, params=clean_params(params), timeout=self._stream_timeout
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx2.HTTPError as exc:
            count_request(REMOTE, "GET", "error")
            raise Unavailable(f"{self.name}: GET {path}: {exc!r}") from exc
        count_request(REMOTE, "GET", response.status_code)
        try:
            if response.status_code >= 400:
                raise error_for_response(response.status_code, await response.aread())
            yield response
        except httpx2.HTTPError as exc:
            raise Unavailable(f"{self.name}: GET {path}: stream broken: {exc!r}") from exc
        finally:
            await response.aclose()

    def _namespace_for(self, kind: Kind, namespace: str | None) -> str | None:
        if not kind.namespaced:
            return None
        return namespace or self.namespace or "default"

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict:
        path = resource_path(kind, self._namespace_for(kind, namespace), name)
        _, obj = await self._request("GET", path)
        return obj

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> ObjectList:
        """With a `limit` (or a `continue_` token), the one page kube-apiserver answers;
        without, every object, read `list_page_size` at a time."""
        path = resource_path(kind, namespace if kind.namespaced else None)
        paged = bool(limit and limit > 0) or bool(continue_)
        params: dict[str, Any] = {
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "limit": limit if paged else self.list_page_size, "continue": continue_ or None,
        }
        items: list[dict] = []
        resource_version = ""
        while True:
            _, page = await self._request("GET", path, params=params)
            meta = page.get("metadata") or {}
            resource_version = resource_version or meta.get("resourceVersion", "")
            for item in page.get("items") or []:
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                items.append(item)
            if paged:
                return ObjectList(items=items, resource_version=resource_version,
                                  continue_=meta.get("continue") or "")
            if not meta.get("continue"):
                break
            params["continue"] = meta["continue"]
        return ObjectList(items=items, resource_version=resource_version)

    async def create(self, obj: dict, *, namespace: str | None = None) -> dict:
        kind = kind_of(obj)
        ns = self._namespace_for(kind, namespace or (obj.get("metadata") or {}).get("namespace"))
        path = resource_path(kind, ns)
        _, created = await self._request(
            "POST", path, body=obj, params={"fieldManager": self._field_manager}
        )
        return created

    async def replace(self, obj: dict) -> dict:
        return await self._put(obj, None)

    async def replace_status(self, obj: dict) -> dict:
        return await self._put(obj, "status")

    async def _put(self, obj: dict, subresource: str | None) -> dict:
        kind = kind_of(obj)
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            raise Invalid("metadata.name is required")
        path = resource_path(
            kind, self._namespace_for(kind, meta.get("namespace")), meta["name"], subresource
        )
        _, stored = await self._request(
            "PUT", path, body=obj, params={"fieldManager": self._field_manager}
        )
        return stored

    async def patch(
        self,
        kind: Kind,
        name: str,
        patch: dict | list,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: Literal["status"] | None = None,
        resource_version: str | None = None,
    ) -> dict:
        if resource_version is not None:
            patch = with_resource_version(patch, patch_type, resource_version)
        path = resource_path(kind, self._namespace_for(kind, namespace), name, subresource)
        _, patched = await self._request(
            "PATCH", path, body=patch, content_type=PATCH_CONTENT_TYPES[patch_type],
            params={"fieldManager": self._field_manager},
        )
        return patched

    async def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: Literal["Background", "Foreground", "Orphan"] | None = None,
    ) -> dict | None:
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        path = resource_path(kind, self._namespace_for(kind, namespace), name)
        status_code, answer = await self._request("DELETE", path, body=options)
        if not isinstance(answer, dict) or answer.get("kind") == "Status":
            return None
        if status_code == 202 or lingers(answer):
            return answer
        return None

    async def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        path = resource_path(kind, namespace if kind.namespaced else None)
        params = {
            "watch": "true", "allowWatchBookmarks": "true",
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds,
        }
        async with self._stream(path, params) as response:
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                try:
                    event = bounded_json.loads(line)
                except ValueError as exc:
                    raise Unavailable(f"{self.name}: undecodable watch event") from exc
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise error_from_status(status)
                yield WatchEvent(type=event["type"], object=event.get("object") or {})

    async def bind_pod(self, name: str, namespace: str, node_name: str) -> None:
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/binding"
        await self._request("POST", path, body=binding)

    async def pod_logs(
        self,
        name: str,
        namespace: str,
        *,
        container: str | None = None,
        follow: bool = False,
        since_bytes: int = 0,
    ) -> AsyncIterator[bytes]:
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/log"
        params = {"container": container, "follow": "true" if follow else None}
        skip = max(0, since_bytes)
        async with self._stream(path, params) as response:
            async for chunk in response.aiter_bytes():
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk, skip = chunk[skip:], 0
                if chunk:
                    yield chunk
