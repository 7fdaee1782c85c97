"""What tenant provisioning creates, and which placements it refuses (pure, no I/O).

A tenant that opens a Cluster integration gets, in that cluster, a workload namespace, its
ResourceQuota, the tenant PVC and the PVC watchdog; the default tenant also has its home
PVC in its metadata namespace. The server's provisioning controller creates what these
functions describe and removes it again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cyclone.api import keys
from cyclone.api.integration import ANNOTATION_PROVISIONING, ProvisioningState
from cyclone.api.tenant import TenantSpec

FINALIZER = "tenant.cyclone.dev/provisioning"
"""Holds a tenant's metadata namespace until what it provisioned elsewhere is removed
(every tenant but the default one, which cannot be deleted)."""


@dataclass(frozen=True)
class Refusal:
    """Why a placement is refused: ``forbidden`` (someone else's) or ``conflict`` (taken)."""

    reason: str
    message: str


def quota_name(tenant: str) -> str:
    return f"cyclone-quota-{tenant}"


def workload_namespace(tenant: str, source: Mapping[str, Any]) -> str:
    return source.get("namespace") or f"cyclone-{tenant}-worker"


def execution_cluster_name(integration: str, source: Mapping[str, Any]) -> str:
    if source.get("isControlCluster"):
        return keys.CONTROL_CLUSTER_NAME
    return source.get("clusterName") or integration


def workload_pvc(tenant: str, source: Mapping[str, Any]) -> str:
    """The PVC a tenant's runs use there: the integration's own, else the tenant PVC."""
    return source.get("pvc") or keys.tenant_pvc_name(tenant)


def provisioned_labels(tenant: str) -> dict[str, str]:
    return {keys.LABEL_TENANT: tenant, keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE}


def namespace_object(tenant: str, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": provisioned_labels(tenant)}}


def quota_object(tenant: str, namespace: str, spec: TenantSpec) -> dict:
    return {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": quota_name(tenant), "namespace": namespace,
                     "labels": provisioned_labels(tenant)},
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
                     "labels": provisioned_labels(tenant)},
        "spec": pvc_spec,
    }


def has_home_pvc(tenant: str) -> bool:
    """Only the default tenant runs in its metadata namespace with a PVC of its own there."""
    return tenant == keys.DEFAULT_TENANT


def quota_differs(existing: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    return ((existing or {}).get("spec") or {}).get("hard") != wanted["spec"]["hard"]


def placement_refusal(tenant: str, source: Mapping[str, Any],
                      namespace_is_another_tenants_record: bool) -> Refusal | None:
    """A workload namespace or PVC the tenant may not use.

    In the control cluster the namespace must be the tenant's own (``cyclone-{tenant}`` or
    ``cyclone-{tenant}-…``); anywhere, it may not be another tenant's metadata namespace
    (``namespace_is_another_tenants_record``, read by the caller), nor the PVC another
    tenant's."""
    namespace = workload_namespace(tenant, source)
    own = keys.tenant_namespace(tenant)
    if source.get("isControlCluster") and namespace != own and \
            not namespace.startswith(own + "-"):
        return Refusal("forbidden",
                       f"in the control cluster the workload namespace of tenant {tenant!r} "
                       f"must be {own!r} or start with {own + '-'!r}, not {namespace!r}")
    if namespace != own and namespace_is_another_tenants_record:
        return Refusal("forbidden",
                       f"namespace {namespace!r} is another tenant's metadata namespace")
    pvc = source.get("pvc")
    if pvc and pvc != keys.tenant_pvc_name(tenant) and pvc.startswith(
            keys.tenant_pvc_name("")):
        return Refusal("forbidden", f"PVC {pvc!r} is another tenant's")
    return None


def namespace_owner_refusal(tenant: str, namespace: Mapping[str, Any] | None
                            ) -> Refusal | None:
    """An existing workload namespace labelled for another tenant is not this tenant's."""
    owner = (((namespace or {}).get("metadata") or {}).get("labels") or {}).get(
        keys.LABEL_TENANT)
    if owner and owner != tenant:
        name = (namespace or {}).get("metadata", {}).get("name")
        return Refusal("forbidden", f"namespace {name!r} belongs to another tenant")
    return None


def claim_refusal(other_tenant: str | None, cluster: str, namespace: str) -> Refusal | None:
    if other_tenant is None:
        return None
    return Refusal("conflict", f"namespace {namespace!r} of cluster {cluster!r} is already "
                               f"the workload namespace of another tenant")


def provisioning_outcome(code: int | None, reason: str = "", message: str = "") -> str:
    """The `ANNOTATION_PROVISIONING` value of an opening: Ready when nothing failed
    (``code`` None), Refused for the integration's own fault (4xx), else Failing."""
    if code is None:
        return json.dumps({"state": ProvisioningState.READY.value})
    state = ProvisioningState.REFUSED if code < 500 else ProvisioningState.FAILING
    return json.dumps({"state": state.value, "reason": reason, "message": message})


def provisioning_status(annotations: Mapping[str, str] | None,
                        source: Mapping[str, Any]) -> dict[str, Any] | None:
    """What an integration's answer shows as ``status.provisioning``: nothing for a closed
    cluster, Pending for an opening the controller has not reported on."""
    if not source.get("isWorkerCluster"):
        return None
    try:
        recorded = json.loads((annotations or {}).get(ANNOTATION_PROVISIONING) or "null")
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict) or recorded.get("state") not in set(ProvisioningState):
        return {"state": ProvisioningState.PENDING.value}
    return recorded
