"""Admission checks of Cyclone objects before they are written.

The tenant checks answer early what the engine enforces anyway (`engine/core/tenancy.py`):
the engine refuses a run that reaches outside its tenant however it was created.
"""

from __future__ import annotations

from typing import Any

from cyclone.api import keys
from cyclone.api.validation import validate_object as field_errors
from cyclone.engine.core.tenancy import (
    TenantPolicy,
    Violation,
    describe,
    run_violations,
    secret_reference_violations,
    stage_violations,
    target_of,
)
from cyclone.engine.placement import read_policy
from cyclone.kube import errors
from cyclone.kube.protocol import Cluster


def validate_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Raise `Invalid` (422) naming every offending field unless `obj` is a valid object."""
    problems = field_errors(obj)
    if problems:
        details = [{"field": p.path, "message": p.message} for p in problems]
        head = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise errors.Invalid(f"invalid {obj.get('kind', 'object')}: {head}{more}",
                             details={"causes": details})
    return obj


def refuse_violations(what: str, violations: list[Violation]) -> None:
    """Raise for what crosses the tenant boundary: `Forbidden` (403) when the object reaches
    what another tenant or Cyclone owns, `Invalid` (422) when it only asks for a pod
    feature the tenant is not allowed; the message and ``details.causes`` name the fields."""
    if not violations:
        return
    causes = [{"field": v.field, "message": v.message} for v in violations]
    access = [v for v in violations if v.feature is None]
    error = errors.Forbidden if access else errors.Invalid
    raise error(f"{what} reaches outside its tenant: {describe(access or violations)}",
                details={"causes": causes})


async def check_stage_tenancy(cluster: Cluster, tenant: str, stage: dict) -> None:
    """A Stage or stage template of the tenant: no escaping pod feature it is not allowed,
    no Secret or PVC of another tenant or of Cyclone."""
    policy = await read_policy(cluster, tenant)
    refuse_violations(f"stage {stage['metadata'].get('name')!r}",
                      stage_violations(policy, stage))


async def check_run_tenancy(cluster: Cluster, tenant: str, run: dict,
                            what: str = "workflowrun") -> None:
    """A WorkflowRun of the tenant (or a trigger's inlined run spec): an execution context
    the tenant owns, Secrets of its own namespace, and preset volumes it may mount."""
    context = (run.get("spec") or {}).get("executionContext")
    target = target_of(keys.tenant_namespace(tenant), context)
    policy = await read_policy(cluster, tenant, [target.cluster])
    refuse_violations(f"{what} {run['metadata'].get('name')!r}", run_violations(policy, run))


def check_secret_references(tenant: str, obj: dict, what: str) -> None:
    """``${secrets...}`` of an object may name only Secrets of the tenant's namespace."""
    refuse_violations(f"{what} {obj['metadata'].get('name')!r}",
                      secret_reference_violations(TenantPolicy(tenant), obj.get("spec"), "spec"))
