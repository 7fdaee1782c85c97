"""Opening a tenant's Cluster integration: what it creates in the worker and control clusters.

Open creates, in the target cluster, the workload namespace, the tenant's ResourceQuota, the
tenant PVC `cyclone-pvc-{tenant}` and the PVC watchdog pod, and in the control cluster the
ExecutionCluster; it marks the integration `isWorkerCluster`. Close removes them again. Every
step tolerates what already exists or is already gone, so both can be repeated.

What a tenant opened is recorded on the cluster-scoped ExecutionCluster (its workload
namespace and PVC there, `core.tenancy.record_patch`), where the engine reads which
execution contexts the tenant owns; a tenant cannot write it with its own kubectl rights.
Opening refuses a workload namespace that is another tenant's metadata namespace (403) or
that another tenant already runs in on that cluster (409).
"""

from __future__ import annotations

import base64
import copy
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import yaml
from fastapi import APIRouter, Depends

from cyclone.api import keys
from cyclone.api.tenant import TenantSpec
from cyclone.engine.core.tenancy import OPENED_PREFIX, claimed_by_other, record_patch
from cyclone.engine.placement import execution_context as execution_context
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.integration_records import (
    list_integration_secrets,
    read_integration_secret,
    redact,
    spec_of_secret,
    write_integration_spec,
)
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import read_tenant, tenant_spec
from cyclone.server.watchdog import (
    WATCHDOG_TOKEN_SECRET,
    watchdog_pod,
    watchdog_pod_name,
    watchdog_token_id,
)

log = logging.getLogger(__name__)
RECORD_ATTEMPTS = 5


def quota_name(tenant: str) -> str:
    return f"cyclone-quota-{tenant}"


def workload_namespace(tenant: str, source: dict) -> str:
    return source.get("namespace") or f"cyclone-{tenant}-worker"


def execution_cluster_name(integration: str, source: dict) -> str:
    if source.get("isControlCluster"):
        return keys.CONTROL_CLUSTER_NAME
    return source.get("clusterName") or integration


@asynccontextmanager
async def target_cluster(state: ServerState, source: dict) -> AsyncIterator[Cluster]:
    """The cluster a Cluster integration designates (the control cluster, or a remote one)."""
    if source.get("isControlCluster"):
        yield state.cluster
        return
    if state.clusters is not None:
        yield await state.clusters(source)
        return
    try:
        from cyclone.kube.remote import RemoteCluster
    except ImportError as exc:
        raise errors.Unavailable("remote clusters are not supported by this build") from exc
    try:
        remote = RemoteCluster.from_credential(source.get("credential") or {})
    except errors.ApiError:
        raise
    except Exception as exc:  # any unusable credential is the caller's input
        raise errors.BadRequest(f"cannot use the cluster credential: {exc}") from exc
    try:
        yield remote
    finally:
        await remote.close()


async def _create(cluster: Cluster, obj: dict) -> None:
    try:
        await cluster.create(obj, namespace=obj["metadata"].get("namespace"))
    except errors.AlreadyExists:
        pass


async def _delete(cluster: Cluster, kind: kinds.Kind, name: str, namespace: str | None = None
                  ) -> None:
    try:
        await cluster.delete(kind, name, namespace, propagation_policy="Background")
    except errors.NotFound:
        pass


def _labels(tenant: str) -> dict[str, str]:
    return {keys.LABEL_TENANT: tenant, keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE}


def quota_object(tenant: str, namespace: str, spec: TenantSpec) -> dict:
    return {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": quota_name(tenant), "namespace": namespace,
                     "labels": _labels(tenant)},
        "spec": {"hard": spec.stored()["resourceQuota"]},
    }


def pvc_object(tenant: str, namespace: str, spec: TenantSpec) -> dict:
    pvc_spec: dict = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": spec.persistent_volume_claim.size}},
    }
    if spec.persistent_volume_claim.storage_class:
        pvc_spec["storageClassName"] = spec.persistent_volume_claim.storage_class
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": keys.tenant_pvc_name(tenant), "namespace": namespace,
                     "labels": _labels(tenant)},
        "spec": pvc_spec,
    }


async def _get_execution_cluster(state: ServerState, name: str) -> dict | None:
    try:
        return await state.cluster.get(kinds.EXECUTION_CLUSTER, name)
    except errors.NotFound:
        return None


def _refuse_claimed(ec: dict | None, tenant: str, namespace: str) -> None:
    other = claimed_by_other(ec, tenant, namespace)
    if other is not None:
        raise errors.Conflict(
            f"namespace {namespace!r} of cluster {ec['metadata']['name']!r} is already the "
            f"workload namespace of another tenant")


async def _record_opened(state: ServerState, tenant: str, name: str, source: dict,
                         integration: str, opened: tuple[str, str]) -> None:
    """Create the ExecutionCluster, or add the tenant's entry to it, with optimistic
    concurrency so two tenants never both claim one namespace."""
    for _ in range(RECORD_ATTEMPTS):
        ec = await _get_execution_cluster(state, name)
        if ec is None:
            credential = {} if source.get("isControlCluster") else execution_credential(
                source.get("credential") or {})
            metadata = record_patch(None, tenant, integration, opened)["metadata"]
            metadata["labels"][keys.LABEL_POD_CREATED_BY] = keys.CREATED_BY_CYCLONE
            try:
                await state.cluster.create({
                    "apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
                    "metadata": {"name": name, **metadata},
                    "spec": {"credential": credential},
                })
                return
            except errors.AlreadyExists:
                continue
        _refuse_claimed(ec, tenant, opened[0])
        try:
            await state.cluster.patch(kinds.EXECUTION_CLUSTER, name,
                                      record_patch(ec, tenant, integration, opened),
                                      resource_version=ec["metadata"]["resourceVersion"])
            return
        except errors.Conflict:
            continue
    raise errors.Conflict(f"ExecutionCluster {name!r} kept changing; try again")


def _without_empty(value: dict) -> dict:
    """Fields left unset (None, "") dropped, since the CRD schema types each field."""
    cleaned = {}
    for key, item in value.items():
        if isinstance(item, dict) and key != "kubeConfig":
            item = _without_empty(item)
        if item is None or item == "" or item == {}:
            continue
        cleaned[key] = item
    return cleaned


def execution_credential(credential: dict) -> dict:
    """An integration's credential as ExecutionCluster `spec.credential` holds it: a
    kubeconfig given as YAML text becomes the object the CRD schema asks for."""
    credential = _without_empty(copy.deepcopy(credential))
    kubeconfig = credential.get("kubeConfig")
    if isinstance(kubeconfig, str):
        try:
            document = yaml.safe_load(kubeconfig)
        except yaml.YAMLError as exc:
            raise errors.BadRequest(f"credential.kubeConfig is not YAML: {exc}") from exc
        if not isinstance(document, dict):
            raise errors.BadRequest("credential.kubeConfig is not a kubeconfig mapping")
        credential["kubeConfig"] = document
    return credential


async def _release_execution_cluster(state: ServerState, tenant: str, name: str,
                                     integration: str) -> None:
    """Drop this integration's entry; delete the ExecutionCluster when no tenant uses it."""
    for _ in range(RECORD_ATTEMPTS):
        ec = await _get_execution_cluster(state, name)
        if ec is None:
            return
        patch = record_patch(ec, tenant, integration, None)
        try:
            updated = await state.cluster.patch(
                kinds.EXECUTION_CLUSTER, name, patch,
                resource_version=ec["metadata"]["resourceVersion"])
        except errors.Conflict:
            continue
        except errors.NotFound:
            return
        labels = updated["metadata"].get("labels") or {}
        if name != keys.CONTROL_CLUSTER_NAME and not any(
                k.startswith(OPENED_PREFIX) for k in labels):
            await _delete(state.cluster, kinds.EXECUTION_CLUSTER, name)
        return


def _check_control_namespace(tenant: str, namespace: str) -> None:
    """In the control cluster a tenant may only use its own namespaces."""
    own = keys.tenant_namespace(tenant)
    if namespace != own and not namespace.startswith(own + "-"):
        raise errors.Forbidden(
            f"in the control cluster the workload namespace of tenant {tenant!r} must be "
            f"{own!r} or start with {own + '-'!r}, not {namespace!r}"
        )


async def _check_not_another_tenants(state: ServerState, tenant: str, namespace: str,
                                     pvc: str | None) -> None:
    """A workload namespace may not be another tenant's metadata namespace, nor a PVC
    another tenant's."""
    if namespace != keys.tenant_namespace(tenant) and namespace.startswith(
            keys.TENANT_NAMESPACE_PREFIX):
        try:
            found = await state.cluster.get(kinds.NAMESPACE, namespace)
        except errors.NotFound:
            found = None
        if keys.ANNOTATION_TENANT_INFO in ((found or {}).get("metadata", {}).get(
                "annotations") or {}):
            raise errors.Forbidden(
                f"namespace {namespace!r} is another tenant's metadata namespace")
    if pvc and pvc != keys.tenant_pvc_name(tenant) and pvc.startswith(
            keys.tenant_pvc_name("")):
        raise errors.Forbidden(f"PVC {pvc!r} is another tenant's")


async def _claim_namespace(cluster: Cluster, tenant: str, namespace: str) -> None:
    """Create the workload namespace, or check that an existing one is not another's."""
    try:
        existing = await cluster.get(kinds.NAMESPACE, namespace)
    except errors.NotFound:
        await _create(cluster, {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": namespace, "labels": _labels(tenant)}})
        return
    owner = (existing["metadata"].get("labels") or {}).get(keys.LABEL_TENANT)
    if owner and owner != tenant:
        raise errors.Forbidden(f"namespace {namespace!r} belongs to another tenant")


async def open_cluster(state: ServerState, tenant: str, secret: dict) -> dict:
    spec = spec_of_secret(secret)
    source = spec.get("cluster") or {}
    name = secret["metadata"]["name"]
    tenant_info = await tenant_spec(state.cluster, tenant)
    namespace = workload_namespace(tenant, source)
    ec_name = execution_cluster_name(name, source)
    if source.get("isControlCluster"):
        _check_control_namespace(tenant, namespace)
    await _check_not_another_tenants(state, tenant, namespace, source.get("pvc"))
    _refuse_claimed(await _get_execution_cluster(state, ec_name), tenant, namespace)
    async with target_cluster(state, source) as cluster:
        await _claim_namespace(cluster, tenant, namespace)
        if tenant_info.resource_quota:
            await _create(cluster, quota_object(tenant, namespace, tenant_info))
        if not source.get("pvc"):
            await _create(cluster, pvc_object(tenant, namespace, tenant_info))
        issued = await state.auth.issue(tenant, f"PVC watchdog of integration {name}",
                                        token_id=watchdog_token_id(name))
        await _delete(cluster, kinds.SECRET, WATCHDOG_TOKEN_SECRET, namespace)
        await _create(cluster, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": WATCHDOG_TOKEN_SECRET, "namespace": namespace,
                         "labels": _labels(tenant)},
            "data": {"token": base64.b64encode(issued.token.encode()).decode()},
        })
        await _create(cluster, watchdog_pod(
            tenant, namespace, source.get("pvc") or keys.tenant_pvc_name(tenant),
            state.server_url,
        ))
    await _record_opened(state, tenant, ec_name, source, name,
                         (namespace, source.get("pvc") or keys.tenant_pvc_name(tenant)))
    spec.setdefault("cluster", {})["isWorkerCluster"] = True
    updated = await write_integration_spec(state.cluster, secret, spec)
    return {"metadata": {"name": name}, "spec": redact(spec_of_secret(updated)),
            "workloadNamespace": namespace, "executionCluster": ec_name}


async def close_cluster(state: ServerState, tenant: str, secret: dict) -> dict:
    spec = spec_of_secret(secret)
    source = spec.get("cluster") or {}
    name = secret["metadata"]["name"]
    namespace = workload_namespace(tenant, source)
    ec_name = execution_cluster_name(name, source)
    async with target_cluster(state, source) as cluster:
        await _delete(cluster, kinds.POD, watchdog_pod_name(tenant), namespace)
        await _delete(cluster, kinds.SECRET, WATCHDOG_TOKEN_SECRET, namespace)
        if not source.get("pvc"):
            await _delete(cluster, kinds.PERSISTENT_VOLUME_CLAIM, keys.tenant_pvc_name(tenant),
                          namespace)
        await _delete(cluster, kinds.RESOURCE_QUOTA, quota_name(tenant), namespace)
        if namespace != keys.tenant_namespace(tenant):
            try:
                ns = await cluster.get(kinds.NAMESPACE, namespace)
            except errors.NotFound:
                ns = None
            if ns and (ns["metadata"].get("labels") or {}).get(keys.LABEL_TENANT) == tenant:
                await _delete(cluster, kinds.NAMESPACE, namespace)
    try:
        await state.auth.revoke(tenant, watchdog_token_id(name))
    except errors.NotFound:
        pass
    await _release_execution_cluster(state, tenant, ec_name, name)
    spec.setdefault("cluster", {})["isWorkerCluster"] = False
    try:
        secret = await write_integration_spec(state.cluster, secret, spec)
    except errors.NotFound:
        pass
    return {"metadata": {"name": name}, "spec": redact(spec_of_secret(secret)),
            "workloadNamespace": namespace, "executionCluster": ec_name}


async def opened_clusters(cluster: Cluster, tenant: str) -> list[tuple[str, dict]]:
    """(integration name, cluster source) of each opened Cluster integration, by name."""
    found = []
    for secret in await list_integration_secrets(cluster, tenant, "Cluster"):
        source = spec_of_secret(secret).get("cluster") or {}
        if source.get("isWorkerCluster"):
            found.append((secret["metadata"]["name"], source))
    return sorted(found, key=lambda pair: pair[0])


async def apply_tenant_quota(state: ServerState, tenant: str, spec: TenantSpec) -> None:
    """Bring the ResourceQuota of every opened cluster in line with the tenant's quota."""
    for name, source in await opened_clusters(state.cluster, tenant):
        namespace = workload_namespace(tenant, source)
        try:
            async with target_cluster(state, source) as cluster:
                await _delete(cluster, kinds.RESOURCE_QUOTA, quota_name(tenant), namespace)
                if spec.resource_quota:
                    await _create(cluster, quota_object(tenant, namespace, spec))
        except errors.ApiError as exc:
            log.warning("cannot update the quota of %s for tenant %s: %s", name, tenant, exc)


async def close_all_clusters(state: ServerState, tenant: str) -> None:
    """Close every opened cluster of a tenant (used when the tenant is deleted)."""
    for secret in await list_integration_secrets(state.cluster, tenant, "Cluster"):
        if (spec_of_secret(secret).get("cluster") or {}).get("isWorkerCluster"):
            try:
                await close_cluster(state, tenant, secret)
            except errors.ApiError as exc:
                log.warning("closing cluster %s of tenant %s: %s",
                            secret["metadata"]["name"], tenant, exc)


router = APIRouter(tags=["integrations"])


async def _cluster_integration(state: ServerState, tenant: str, integration: str) -> dict:
    await read_tenant(state.cluster, tenant)
    secret = await read_integration_secret(state.cluster, tenant, integration)
    if spec_of_secret(secret).get("type") != "Cluster":
        raise errors.BadRequest(f"integration {integration!r} is not of type Cluster")
    return secret


@router.put("/integrations/{integration}/opencluster")
async def open_cluster_route(
    integration: str,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    """Make a Cluster integration a worker cluster of the tenant."""
    return await open_cluster(state, tenant,
                              await _cluster_integration(state, tenant, integration))


@router.put("/integrations/{integration}/closecluster")
async def close_cluster_route(
    integration: str,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    """Stop using a Cluster integration as a worker cluster; remove what open created."""
    return await close_cluster(state, tenant,
                               await _cluster_integration(state, tenant, integration))
