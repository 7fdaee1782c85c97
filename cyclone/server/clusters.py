"""Opening a tenant's Cluster integration: what it creates in the worker and control clusters.

Open creates, in the target cluster, the workload namespace, the tenant's ResourceQuota, the
tenant PVC `cyclone-pvc-{tenant}` and the PVC watchdog pod, and in the control cluster the
ExecutionCluster; it marks the integration `isWorkerCluster`. Close removes them again. Every
step tolerates what already exists or is already gone, so both can be repeated.
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
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.integrations import (
    list_integration_secrets,
    read_integration_secret,
    redact,
    spec_of_secret,
    write_integration_spec,
)
from cyclone.server.state import ServerState
from cyclone.server.tenants import TenantSpec, read_tenant, tenant_spec
from cyclone.server.watchdog import (
    WATCHDOG_TOKEN_SECRET,
    watchdog_pod,
    watchdog_pod_name,
    watchdog_token_id,
)

log = logging.getLogger(__name__)
OPENED_LABEL_PREFIX = "opened.tenant.cyclone.dev/"


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
        "spec": {"hard": dict(spec.resourceQuota)},
    }


def pvc_object(tenant: str, namespace: str, spec: TenantSpec) -> dict:
    pvc_spec: dict = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": spec.persistentVolumeClaim.size or "10Gi"}},
    }
    if spec.persistentVolumeClaim.storageClass:
        pvc_spec["storageClassName"] = spec.persistentVolumeClaim.storageClass
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": keys.tenant_pvc_name(tenant), "namespace": namespace,
                     "labels": _labels(tenant)},
        "spec": pvc_spec,
    }


async def _ensure_execution_cluster(state: ServerState, tenant: str, name: str,
                                    source: dict) -> None:
    label = OPENED_LABEL_PREFIX + tenant
    try:
        await state.cluster.patch(kinds.EXECUTION_CLUSTER, name,
                                  {"metadata": {"labels": {label: "true"}}})
        return
    except errors.NotFound:
        pass
    credential = {} if source.get("isControlCluster") else execution_credential(
        source.get("credential") or {})
    await _create(state.cluster, {
        "apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
        "metadata": {"name": name, "labels": {label: "true",
                                              keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE}},
        "spec": {"credential": credential},
    })


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


async def _release_execution_cluster(state: ServerState, tenant: str, name: str) -> None:
    """Drop this tenant's claim; delete the ExecutionCluster when no tenant uses it."""
    try:
        ec = await state.cluster.get(kinds.EXECUTION_CLUSTER, name)
    except errors.NotFound:
        return
    labels = dict(ec["metadata"].get("labels") or {})
    label = OPENED_LABEL_PREFIX + tenant
    if label in labels:
        await state.cluster.patch(kinds.EXECUTION_CLUSTER, name,
                                  {"metadata": {"labels": {label: None}}})
        labels.pop(label)
    others = [k for k in labels if k.startswith(OPENED_LABEL_PREFIX)]
    if not others and name != keys.CONTROL_CLUSTER_NAME:
        await _delete(state.cluster, kinds.EXECUTION_CLUSTER, name)


def _check_control_namespace(tenant: str, namespace: str) -> None:
    """In the control cluster a tenant may only use its own namespaces."""
    own = keys.tenant_namespace(tenant)
    if namespace != own and not namespace.startswith(own + "-"):
        raise errors.Forbidden(
            f"in the control cluster the workload namespace of tenant {tenant!r} must be "
            f"{own!r} or start with {own + '-'!r}, not {namespace!r}"
        )


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
    async with target_cluster(state, source) as cluster:
        await _claim_namespace(cluster, tenant, namespace)
        if tenant_info.resourceQuota:
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
    await _ensure_execution_cluster(state, tenant, ec_name, source)
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
    await _release_execution_cluster(state, tenant, ec_name)
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


async def execution_context(cluster: Cluster, tenant: str) -> dict:
    """Where a tenant's runs execute: its first opened cluster, else the control cluster in
    the tenant's metadata namespace (with the tenant PVC when one exists there)."""
    opened = await opened_clusters(cluster, tenant)
    if not opened:
        namespace = keys.tenant_namespace(tenant)
        try:
            await cluster.get(kinds.PERSISTENT_VOLUME_CLAIM, keys.tenant_pvc_name(tenant),
                              namespace)
            pvc = keys.tenant_pvc_name(tenant)
        except errors.NotFound:
            pvc = ""
        return {"cluster": keys.CONTROL_CLUSTER_NAME, "namespace": namespace, "pvc": pvc}
    name, source = opened[0]
    return {"cluster": execution_cluster_name(name, source),
            "namespace": workload_namespace(tenant, source),
            "pvc": source.get("pvc") or keys.tenant_pvc_name(tenant)}


async def apply_tenant_quota(state: ServerState, tenant: str, spec: TenantSpec) -> None:
    """Bring the ResourceQuota of every opened cluster in line with the tenant's quota."""
    for name, source in await opened_clusters(state.cluster, tenant):
        namespace = workload_namespace(tenant, source)
        try:
            async with target_cluster(state, source) as cluster:
                await _delete(cluster, kinds.RESOURCE_QUOTA, quota_name(tenant), namespace)
                if spec.resourceQuota:
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
