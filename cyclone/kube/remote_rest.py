"""The REST side of `RemoteCluster`: paths, conditional patches, and reading answers."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from cyclone.kube.errors import ApiError, Invalid, error_from_status
from cyclone.kube.kinds import Kind
from cyclone.kube.protocol import PatchType

MAX_RETRY_AFTER_SECONDS = 10.0

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


def resource_path(
    kind: Kind, namespace: str | None = None, name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The REST path of a collection, an object or a subresource of `kind`."""
    prefix = "/api/v1" if kind.api_version == "v1" else f"/apis/{kind.api_version}"
    if kind.namespaced and namespace:
        prefix += f"/namespaces/{namespace}"
    path = f"{prefix}/{kind.plural}"
    if name is not None:
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path


def error_for_response(status_code: int, body: bytes) -> ApiError:
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        status.setdefault("code", status_code)
        return error_from_status(status)
    text = body.decode(errors="replace").strip()[:500]
    return error_from_status({"code": status_code, "message": text or f"HTTP {status_code}"})


def lingers(obj: dict) -> bool:
    """Whether an object answered by a DELETE is still stored (finalizers or grace period)."""
    meta = obj.get("metadata") or {}
    if meta.get("finalizers"):
        return True
    if (obj.get("spec") or {}).get("finalizers"):
        return True
    if obj.get("kind") == "Namespace" and (obj.get("status") or {}).get("phase") == "Terminating":
        return True
    return bool(meta.get("deletionTimestamp")) and bool(meta.get("deletionGracePeriodSeconds"))


def retry_after(response: httpx2.Response) -> float | None:
    """How long the server asks to wait before retrying (429, or 5xx with Retry-After)."""
    code = response.status_code
    if code != 429 and not 500 <= code < 600:
        return None
    try:
        seconds = float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def clean_params(params: dict[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (params or {}).items() if v is not None}


def with_resource_version(
    patch: dict | list, patch_type: PatchType, resource_version: str
) -> dict | list:
    """Make a patch conditional on `resource_version` (the server answers 409 otherwise)."""
    if patch_type == "json":
        if not isinstance(patch, list):
            raise Invalid("a JSON patch is a list of operations")
        return [
            {"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version},
            *patch,
        ]
    if not isinstance(patch, dict):
        raise Invalid(f"a {patch_type} patch is an object")
    metadata = dict(patch.get("metadata") or {})
    metadata["resourceVersion"] = resource_version
    return {**patch, "metadata": metadata}
