"""A tenant's record: its metadata namespace `cyclone-{tenant}` and the tenant-info annotation.

Reading and writing the record, and its API shape, live here so that every module that
needs a tenant (routes, the provisioning controller) imports them without importing a
route module.
"""

from __future__ import annotations

import json
from typing import Any

from cyclone.api import keys
from cyclone.api.tenant import TenantSpec
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.kube.quantity import parse_quantity

ANNOTATION_STORAGE_USAGE = keys.ANNOTATION_STORAGE_USAGE
HIDDEN_ANNOTATIONS = (keys.ANNOTATION_TENANT_INFO, ANNOTATION_STORAGE_USAGE)


def check_quota(quota: dict[str, str]) -> None:
    """422 for a quota value that is not a non-negative quantity."""
    for name, value in quota.items():
        try:
            amount = parse_quantity(value)
        except ValueError as exc:
            raise errors.Invalid(f"spec.resourceQuota[{name}]: invalid quantity {value!r}"
                                 ) from exc
        if amount < 0:
            raise errors.Invalid(f"spec.resourceQuota[{name}]: negative quantity {value!r}")


def tenant_namespace_object(name: str, spec: TenantSpec,
                            annotations: dict[str, str] | None = None) -> dict:
    """The metadata namespace of tenant `name` (user annotations beside the tenant info)."""
    kept = {k: v for k, v in (annotations or {}).items() if k not in HIDDEN_ANNOTATIONS}
    kept[keys.ANNOTATION_TENANT_INFO] = spec.stored_json()
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": keys.tenant_namespace(name),
            "labels": {keys.LABEL_TENANT: name},
            "annotations": kept,
        },
    }


def is_tenant_record(ns: dict | None) -> bool:
    meta = (ns or {}).get("metadata") or {}
    return keys.ANNOTATION_TENANT_INFO in (meta.get("annotations") or {}) and \
        (meta.get("name") or "").startswith(keys.TENANT_NAMESPACE_PREFIX)


def spec_of_namespace(ns: dict) -> TenantSpec:
    """The tenant spec a metadata namespace records (the defaults when unreadable)."""
    text = ((ns.get("metadata") or {}).get("annotations") or {}).get(
        keys.ANNOTATION_TENANT_INFO, "")
    try:
        return TenantSpec.model_validate(json.loads(text))
    except ValueError:
        return TenantSpec()


def tenant_name_of(ns: dict) -> str:
    return ns["metadata"]["name"][len(keys.TENANT_NAMESPACE_PREFIX):]


def tenant_from_namespace(ns: dict) -> dict[str, Any] | None:
    """The API shape of a tenant, or None for a namespace that is not a tenant's."""
    if not is_tenant_record(ns):
        return None
    meta = ns["metadata"]
    annotations = meta.get("annotations") or {}
    return {
        "metadata": {
            "name": tenant_name_of(ns),
            "annotations": {k: v for k, v in annotations.items() if k not in HIDDEN_ANNOTATIONS},
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": spec_of_namespace(ns).stored(),
    }


async def read_tenant_namespace(cluster: Cluster, tenant: str) -> dict:
    """The metadata namespace of a live tenant; NotFound when missing or being deleted."""
    try:
        ns = await cluster.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
    except errors.NotFound:
        ns = None
    if not is_tenant_record(ns):
        raise errors.NotFound(f"tenant {tenant!r} not found")
    assert ns is not None
    if ns["metadata"].get("deletionTimestamp"):
        raise errors.NotFound(f"tenant {tenant!r} is being deleted")
    return ns


async def read_tenant(cluster: Cluster, tenant: str) -> dict:
    found = tenant_from_namespace(await read_tenant_namespace(cluster, tenant))
    assert found is not None
    return found


async def tenant_spec(cluster: Cluster, tenant: str) -> TenantSpec:
    return spec_of_namespace(await read_tenant_namespace(cluster, tenant))


async def being_deleted(cluster: Cluster, tenant: str) -> bool | None:
    """Whether the tenant's metadata namespace is ending; None when it is already gone."""
    try:
        ns = await cluster.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
    except errors.NotFound:
        return None
    return bool(ns["metadata"].get("deletionTimestamp"))


async def ensure_tenant(cluster: Cluster, name: str, spec: TenantSpec | None = None) -> None:
    """Create a tenant's metadata namespace when missing (the default tenant at startup); an
    existing namespace without the tenant info gets it, and is otherwise left as it is."""
    spec = spec or TenantSpec()
    try:
        ns = await cluster.get(kinds.NAMESPACE, keys.tenant_namespace(name))
    except errors.NotFound:
        try:
            await cluster.create(tenant_namespace_object(name, spec))
        except errors.AlreadyExists:
            pass
        return
    if keys.ANNOTATION_TENANT_INFO not in (ns["metadata"].get("annotations") or {}):
        await cluster.patch(
            kinds.NAMESPACE, ns["metadata"]["name"],
            {"metadata": {"labels": {keys.LABEL_TENANT: name}, "annotations": {
                keys.ANNOTATION_TENANT_INFO: spec.stored_json()}}},
        )
