"""Admission checks of Cyclone objects before they are written.

The tenant checks answer early what the engine enforces anyway (`engine/core/tenancy.py`):
the engine refuses a run that reaches outside its tenant however it was created. The field
validation and the run checks are the engine's (`cyclone.engine.runstart`), so the server
and the cron controller refuse the same runs.
"""

from __future__ import annotations

from cyclone.engine.core.tenancy import (
    TenantPolicy,
    secret_reference_violations,
    stage_violations,
)
from cyclone.engine.placement import read_policy
from cyclone.engine.runstart import refuse_violations
from cyclone.kube.protocol import Cluster


async def check_stage_tenancy(cluster: Cluster, tenant: str, stage: dict) -> None:
    """A Stage or stage template of the tenant: no escaping pod feature it is not allowed,
    no Secret or PVC of another tenant or of Cyclone."""
    policy = await read_policy(cluster, tenant)
    refuse_violations(f"stage {stage['metadata'].get('name')!r}",
                      stage_violations(policy, stage))


def check_secret_references(tenant: str, obj: dict, what: str) -> None:
    """``${secrets...}`` of an object may name only Secrets of the tenant's namespace."""
    refuse_violations(f"{what} {obj['metadata'].get('name')!r}",
                      secret_reference_violations(TenantPolicy(tenant), obj.get("spec"), "spec"))
