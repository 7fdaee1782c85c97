"""Whether a tenant may use the placement a Cluster integration asks for: the checks the
open handler answers early with and the provisioning controller repeats."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cyclone.api import keys
from cyclone.engine.core import provisioning as plan
from cyclone.engine.core.tenancy import claimed_by_other
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.tenant_records import is_tenant_record

Reader = Callable[..., Awaitable["dict | None"]]


def refused(refusal: plan.Refusal) -> errors.ApiError:
    if refusal.reason == "conflict":
        return errors.Conflict(refusal.message)
    return errors.Forbidden(refusal.message)


async def get_or_none(cluster: Cluster, kind: kinds.Kind, name: str, namespace: str | None = None
               ) -> dict | None:
    try:
        return await cluster.get(kind, name, namespace)
    except errors.NotFound:
        return None


async def check_placement(control: Cluster, tenant: str, integration: str, source: dict,
                          read: Reader | None = None) -> None:
    """Raise Forbidden for a workload namespace or PVC that is not the tenant's to use,
    and Conflict for a namespace another tenant already runs in on that cluster.

    `read(kind, name, namespace)` reads the control cluster (live by default)."""
    if read is None:
        async def read(kind: kinds.Kind, name: str, namespace: str | None = None):
            return await get_or_none(control, kind, name, namespace)
    namespace = plan.workload_namespace(tenant, source)
    other_record = False
    if namespace != keys.tenant_namespace(tenant) and namespace.startswith(
            keys.TENANT_NAMESPACE_PREFIX):
        other_record = is_tenant_record(await read(kinds.NAMESPACE, namespace))
    refusal = plan.placement_refusal(tenant, source, other_record)
    if refusal is None:
        ec_name = plan.execution_cluster_name(integration, source)
        ec = await read(kinds.EXECUTION_CLUSTER, ec_name)
        refusal = plan.claim_refusal(claimed_by_other(ec, tenant, namespace), ec_name,
                                     namespace)
    if refusal is not None:
        raise refused(refusal)
