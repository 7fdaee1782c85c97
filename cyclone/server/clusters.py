"""Opening and closing a tenant's Cluster integration: the routes that state the intent.

Open marks the integration `isWorkerCluster`; the provisioning controller
(`cyclone.server.provisioning`) then creates, in the target cluster, the workload namespace,
the tenant's ResourceQuota, the tenant PVC `cyclone-pvc-{tenant}` and the PVC watchdog, and
records the opening on the cluster-scoped ExecutionCluster (`core.tenancy.record_patch`),
where the engine reads which execution contexts the tenant owns; a tenant cannot write it
with its own kubectl rights. Close clears the mark and the controller removes them again.

Before writing the intent the routes refuse a workload namespace that is another tenant's
metadata namespace or PVC (403) or that another tenant already runs in on that cluster
(409); the controller checks the same again, so an intent written around the API is refused
too. When the controller runs in this process the route waits (bounded) for it to reconcile
the tenant, and answers with its refusal, if any, after withdrawing the intent; where it
runs elsewhere (another replica leads) the route answers once the intent is written, and
the integration's ``status.provisioning`` shows the controller's outcome when it comes.
"""

from __future__ import annotations

import copy
import logging

from fastapi import APIRouter, Depends

from cyclone.api.integration import ANNOTATION_PROVISIONING
from cyclone.engine.core import provisioning as plan
from cyclone.kube import errors
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.integration_records import (
    read_integration_secret,
    redact,
    spec_of_secret,
    write_integration_spec,
)
from cyclone.server.provisioning import PROVISIONER, TenantProvisioner
from cyclone.server.provisioning_checks import check_placement
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import read_tenant

log = logging.getLogger(__name__)


async def reconciled(state: ServerState, tenant: str) -> TenantProvisioner | None:
    """Wait (bounded) for this process's provisioning controller to reconcile `tenant`;
    the controller when it did, None when it runs elsewhere or took too long."""
    provisioner: TenantProvisioner | None = state.extras.get(PROVISIONER)
    if provisioner is None or not await provisioner.wait_for_tenant(tenant):
        return None
    return provisioner


def _answer(name: str, tenant: str, secret: dict) -> dict:
    source = spec_of_secret(secret).get("cluster") or {}
    return {"metadata": {"name": name}, "spec": redact(spec_of_secret(secret)),
            "workloadNamespace": plan.workload_namespace(tenant, source),
            "executionCluster": plan.execution_cluster_name(name, source)}


async def _write_intent(state: ServerState, secret: dict, opened: bool) -> dict:
    """Write the intent; the controller's outcome of an earlier one goes with it."""
    spec = spec_of_secret(secret)
    spec.setdefault("cluster", {})["isWorkerCluster"] = opened
    secret = copy.deepcopy(secret)
    (secret["metadata"].get("annotations") or {}).pop(ANNOTATION_PROVISIONING, None)
    return await write_integration_spec(state.cluster, secret, spec)


INTENT_WRITE_ATTEMPTS = 3


async def _write_fresh_intent(state: ServerState, tenant: str, secret: dict,
                              opened: bool) -> dict:
    """Write the intent; when the provisioning controller recorded an outcome on the
    Secret between our read and our write (409), read it again and write once more."""
    for _ in range(INTENT_WRITE_ATTEMPTS - 1):
        try:
            return await _write_intent(state, secret, opened)
        except errors.Conflict:
            secret = await read_integration_secret(state.cluster, tenant,
                                                   secret["metadata"]["name"])
    return await _write_intent(state, secret, opened)


async def open_cluster(state: ServerState, tenant: str, secret: dict) -> dict:
    name = secret["metadata"]["name"]
    source = spec_of_secret(secret).get("cluster") or {}
    await check_placement(state.cluster, tenant, name, source)
    updated = await _write_fresh_intent(state, tenant, secret, True)
    provisioner = await reconciled(state, tenant)
    failure = provisioner.failure(tenant, name) if provisioner else None
    if failure is not None:
        try:
            current = await read_integration_secret(state.cluster, tenant, name)
            await _write_intent(state, current, False)
            await provisioner.wait_for_tenant(tenant)  # type: ignore[union-attr]
        except errors.ApiError as exc:
            log.warning("cannot withdraw the opening of %s of tenant %s: %s", name, tenant, exc)
        raise failure
    return _answer(name, tenant, updated)


async def close_cluster(state: ServerState, tenant: str, secret: dict) -> dict:
    name = secret["metadata"]["name"]
    updated = await _write_fresh_intent(state, tenant, secret, False)
    await reconciled(state, tenant)
    return _answer(name, tenant, updated)


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
