"""Tenant: the one shape of a tenant, for the server, ``cyclone apply`` and the engine.

The spec is stored as JSON on the tenant's metadata namespace (annotation
``keys.ANNOTATION_TENANT_INFO``) and shown by the REST API with every field written out
(`TenantSpec.stored`); that JSON is the contract, so it keeps its field order and defaults.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ConfigDict, Field

from cyclone.api.common import CycloneModel, Quantity
from cyclone.api.meta import ObjectMeta

PodFeature = Literal["hostPath", "privileged", "hostNetwork", "hostPID", "hostIPC",
                     "capabilities", "hostPort"]
"""Pod fields that reach outside a pod; a tenant's stages may use one only when an admin
lists it in the tenant's ``allowedPodFeatures``."""
POD_FEATURES: tuple[str, ...] = PodFeature.__args__
DEFAULT_PVC_SIZE = "10Gi"
PVC_SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|[mkMGTPE]|)$"


class TenantPVC(CycloneModel):
    """The tenant PVC shared by a run's pods."""

    model_config = ConfigDict(extra="forbid")

    storage_class: str = Field(default="", max_length=253)
    size: str = Field(default=DEFAULT_PVC_SIZE, pattern=PVC_SIZE_PATTERN)


class TenantSpec(CycloneModel):
    model_config = ConfigDict(extra="forbid")

    persistent_volume_claim: TenantPVC = Field(default_factory=TenantPVC)
    resource_quota: dict[str, Quantity] = Field(
        default_factory=dict, description="ResourceQuota of the tenant's workload namespaces."
    )
    allowed_pod_features: list[PodFeature] = Field(
        default_factory=list,
        description="Pod features that escape a pod (hostPath, privileged, hostNetwork, "
                    "hostPID, hostIPC, capabilities, hostPort) this tenant's stages may use. "
                    "Only an admin sets it; none by default.")
    allow_local_addresses: bool = Field(
        default=False,
        description="SCM servers and notification URLs of this tenant may be loopback or "
                    "link-local addresses. Only an admin sets it; refused by default.")

    def stored(self) -> dict[str, Any]:
        """Every field written out, in the order the annotation and the API show them;
        quota quantities as Kubernetes writes them, strings."""
        return {
            "persistentVolumeClaim": {
                "storageClass": self.persistent_volume_claim.storage_class,
                "size": self.persistent_volume_claim.size,
            },
            "resourceQuota": {name: value if isinstance(value, str) else str(value)
                              for name, value in self.resource_quota.items()},
            "allowedPodFeatures": list(self.allowed_pod_features),
            "allowLocalAddresses": self.allow_local_addresses,
        }

    def stored_json(self) -> str:
        """The annotation value of this spec."""
        return json.dumps(self.stored(), separators=(",", ":"), ensure_ascii=False)


class Tenant(CycloneModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TenantSpec = Field(default_factory=TenantSpec)

    @property
    def name(self) -> str:
        return self.metadata.name or ""
