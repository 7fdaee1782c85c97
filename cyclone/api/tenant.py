"""Tenant: the server-side shape of a tenant (stored on its namespace's annotation)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cyclone.api.common import CycloneModel, Quantity
from cyclone.api.meta import ObjectMeta

PodFeature = Literal["hostPath", "privileged", "hostNetwork", "hostPID", "hostIPC",
                     "capabilities", "hostPort"]
"""Pod fields that reach outside a pod; a tenant's stages may use one only when an admin
lists it in the tenant's ``allowedPodFeatures``."""
POD_FEATURES: tuple[str, ...] = PodFeature.__args__


class TenantPVC(CycloneModel):
    """The tenant PVC shared by a run's pods."""

    storage_class: str | None = None
    size: str | None = None


class TenantSpec(CycloneModel):
    persistent_volume_claim: TenantPVC | None = None
    resource_quota: dict[str, Quantity] | None = Field(
        default=None, description="ResourceQuota of the tenant's workload namespace."
    )
    allowed_pod_features: list[PodFeature] = Field(
        default_factory=list,
        description="Pod features that escape a pod which this tenant's stages may use "
                    "(admin only; none by default).")
    allow_local_addresses: bool = Field(
        default=False,
        description="SCM servers and notification URLs of this tenant may be loopback or "
                    "link-local addresses (admin only; refused by default).")


class Tenant(CycloneModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TenantSpec = Field(default_factory=TenantSpec)

    @property
    def name(self) -> str:
        return self.metadata.name or ""
