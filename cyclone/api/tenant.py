"""Tenant: the server-side shape of a tenant (stored on its namespace's annotation)."""

from __future__ import annotations

from pydantic import Field

from cyclone.api.common import CycloneModel, Quantity
from cyclone.api.meta import ObjectMeta


class TenantPVC(CycloneModel):
    """The tenant PVC shared by a run's pods."""

    storage_class: str | None = None
    size: str | None = None


class TenantSpec(CycloneModel):
    persistent_volume_claim: TenantPVC | None = None
    resource_quota: dict[str, Quantity] | None = Field(
        default=None, description="ResourceQuota of the tenant's workload namespace."
    )


class Tenant(CycloneModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TenantSpec = Field(default_factory=TenantSpec)

    @property
    def name(self) -> str:
        return self.metadata.name or ""
