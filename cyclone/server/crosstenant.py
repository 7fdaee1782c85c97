"""Views across tenants: the admin lists of every tenant's objects, the stage pods running
now (`/workingpods`) and where a tenant's runs may execute (`/tenants/{t}/executioncontexts`).

Each item of an admin list carries its tenant as the label `tenant.cyclone.dev/name` (added
to the answer, not stored), so `filter=tenant.cyclone.dev/name=acme` narrows the list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Header

from cyclone.api import keys
from cyclone.api.credentials import mask_credentials
from cyclone.api.trigger import WorkflowTrigger
from cyclone.engine.core.tenancy import opened_by, policy_for
from cyclone.engine.core.timefmt import parse_rfc3339
from cyclone.kube import errors, kinds
from cyclone.kube.kinds import Kind
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import (
    Principal,
    current_principal,
    require_admin,
    server_state,
    tenant_allowed,
)
from cyclone.server.dialing import dialled
from cyclone.server.listing import ListQuery, list_query, paginate
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import (
    is_tenant_record,
    read_tenant_namespace,
    tenant_name_of,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["admin"])
TEMPLATE_LABELS = (keys.LABEL_STAGE_TEMPLATE, keys.LABEL_RESOURCE_TEMPLATE)
LIVE_POD_PHASES = ("Pending", "Running")


def _as_is(obj: dict) -> dict:
    return obj


def _mask_trigger(obj: dict) -> dict:
    return mask_credentials(WorkflowTrigger, obj)


async def _tenants(cluster: Cluster) -> dict[str, str]:
    """metadata namespace → tenant, for every tenant not being deleted."""
    return {ns["metadata"]["name"]: tenant_name_of(ns)
            for ns in (await cluster.list(kinds.NAMESPACE)).items
            if is_tenant_record(ns) and not ns["metadata"].get("deletionTimestamp")}


def with_tenant(obj: dict, tenant: str) -> dict:
    """The object as the admin lists show it: its tenant among its labels."""
    meta = dict(obj.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), keys.LABEL_TENANT: tenant}
    return {**obj, "metadata": meta}


def project_objects(objects: Iterable[dict], tenants: dict[str, str]) -> list[dict]:
    """The objects of tenants' projects (not stage templates, resource types or built-ins),
    each with its tenant."""
    found = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        tenant = tenants.get(meta.get("namespace") or "")
        labels = meta.get("labels") or {}
        if tenant is None or any(labels.get(k) == "true" for k in TEMPLATE_LABELS):
            continue
        found.append(with_tenant(obj, tenant))
    return found


def _admin_list(kind: Kind, what: str, present: Callable[[dict], dict] = _as_is) -> None:
    @router.get(f"/{kind.plural}", name=f"list_all_{kind.plural}",
                summary=f"List the {what} of every tenant (admin)")
    async def list_route(query: ListQuery = Depends(list_query),
                         state: ServerState = Depends(server_state),
                         _: Principal = Depends(require_admin)) -> dict:
        tenants = await _tenants(state.cluster)
        listed = (await state.cluster.list(kind)).items
        return paginate([present(o) for o in project_objects(listed, tenants)], query)

    list_route.__doc__ = (f"Every tenant's {what}, with the list parameters of the "
                          f"per-project lists; each item's tenant is its "
                          f"`{keys.LABEL_TENANT}` label. A tenant token answers 403.")


_admin_list(kinds.WORKFLOW, "workflows")
_admin_list(kinds.STAGE, "stages")
_admin_list(kinds.RESOURCE, "resources")
_admin_list(kinds.WORKFLOW_RUN, "workflowruns")
_admin_list(kinds.WORKFLOW_TRIGGER, "workflowtriggers", _mask_trigger)


# -- Stage pods running now -------------------------------------------------------------

WORKLOAD_SELECTOR = (f"{keys.LABEL_POD_CREATED_BY}={keys.CREATED_BY_CYCLONE},"
                     f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}")


def working_pod(pod: dict, cluster: str, now: datetime) -> dict:
    """A stage pod as `/workingpods` lists it."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    tenant = labels.get(keys.LABEL_TENANT) or (
        annotations.get(keys.ANNOTATION_META_NAMESPACE, "")
        .removeprefix(keys.TENANT_NAMESPACE_PREFIX))
    created = meta.get("creationTimestamp")
    age = int((now - parse_rfc3339(created)).total_seconds()) if created else None
    return {
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                     "creationTimestamp": created},
        "cluster": cluster, "tenant": tenant,
        "project": labels.get(keys.LABEL_PROJECT),
        "workflow": labels.get(keys.LABEL_WORKFLOW),
        "workflowrun": labels.get(keys.LABEL_WORKFLOWRUN),
        "stage": labels.get(keys.LABEL_STAGE),
        "phase": (pod.get("status") or {}).get("phase") or "Pending",
        "ageSeconds": max(age, 0) if age is not None else None,
    }


def running_pods(pods: Iterable[dict], cluster: str, now: datetime,
                 tenant: str | None) -> list[dict]:
    """The stage pods not finished yet (of `tenant` only, when given)."""
    items = [working_pod(p, cluster, now) for p in pods
             if not (p.get("metadata") or {}).get("deletionTimestamp")]
    return [i for i in items if i["phase"] in LIVE_POD_PHASES
            and (tenant is None or i["tenant"] == tenant)]


async def _cluster_pods(state: ServerState, ec: dict) -> list[dict]:
    name = ec["metadata"]["name"]
    credential = (ec.get("spec") or {}).get("credential") or {}
    if name == keys.CONTROL_CLUSTER_NAME or not credential:
        return (await state.cluster.list(kinds.POD, label_selector=WORKLOAD_SELECTOR)).items
    source = {"clusterName": name, "credential": credential}
    async with dialled(state.cluster, state.clusters, source) as remote:
        return (await remote.list(kinds.POD, label_selector=WORKLOAD_SELECTOR)).items


def clusters_to_dial(tenant: str | None, ecs: list[dict]) -> list[dict]:
    """The ExecutionClusters whose stage pods `/workingpods` lists: every one for the
    admin; for one tenant the control cluster and those it opened, chosen before any is
    dialled, so that its answer never names another tenant's cluster and its request never
    connects with another tenant's credential."""
    if tenant is None:
        return ecs
    opened = {o.cluster for o in opened_by(tenant, ecs)} | {keys.CONTROL_CLUSTER_NAME}
    return [ec for ec in ecs if ec["metadata"]["name"] in opened]


async def pods_tenant(principal: Principal = Depends(current_principal),
                      x_tenant: str | None = Header(default=None, description=(
                          "Only this tenant's pods (a tenant token: always its own)"))
                      ) -> str | None:
    if principal.admin:
        return (x_tenant or "").strip() or None
    if x_tenant and x_tenant.strip() != principal.tenant:
        raise errors.NotFound(f"tenant {x_tenant.strip()!r} not found")
    return principal.tenant


@router.get("/workingpods", summary="List the stage pods running now")
async def list_working_pods(query: ListQuery = Depends(list_query),
                            tenant: str | None = Depends(pods_tenant),
                            state: ServerState = Depends(server_state)) -> dict:
    """The stage pods (`pod.kubernetes.io/kind=workload`) pending or running in every
    execution cluster, with their tenant, project, workflow, run, stage, phase and age.
    The admin sees every tenant's; one tenant's (the admin's with `X-Tenant`; a tenant
    token: always its own) are looked for in the control cluster and the clusters that
    tenant opened only. A cluster that cannot be reached is named in
    `metadata.unreachable`."""
    now = datetime.now(UTC)
    ecs = clusters_to_dial(tenant, (await state.cluster.list(kinds.EXECUTION_CLUSTER)).items)
    seen: set[str] = set()
    unreachable: list[str] = []
    items: list[dict] = []
    for ec in sorted(ecs, key=lambda e: e["metadata"]["name"]):
        name = ec["metadata"]["name"]
        try:
            pods = await _cluster_pods(state, ec)
        except (errors.ApiError, OSError, ValueError) as exc:
            log.warning("cannot list the stage pods of cluster %s: %s", name, exc)
            unreachable.append(name)
            continue
        for item in running_pods(pods, name, now, tenant):
            key = f"{name}/{item['metadata']['namespace']}/{item['metadata']['name']}"
            if key not in seen:
                seen.add(key)
                items.append(item)
    answer = paginate(items, query)
    if unreachable:
        answer["metadata"]["unreachable"] = unreachable
    return answer


# -- Execution contexts -----------------------------------------------------------------

@router.get("/tenants/{tenant}/executioncontexts", tags=["tenants"],
            summary="List where a tenant's runs may execute")
async def list_execution_contexts(tenant: str, query: ListQuery = Depends(list_query),
                                  principal: Principal = Depends(current_principal),
                                  state: ServerState = Depends(server_state)) -> dict:
    """The execution contexts `{cluster, namespace, pvc}` a run of the tenant may name in
    `spec.executionContext`: its home (the control cluster, its metadata namespace) and
    each cluster it opened, with the Cluster integration that opened it."""
    if not tenant_allowed(principal, tenant):
        raise errors.NotFound(f"tenant {tenant!r} not found")
    ns = await read_tenant_namespace(state.cluster, tenant)
    ecs = (await state.cluster.list(kinds.EXECUTION_CLUSTER)).items
    policy = policy_for(tenant, ns, ecs)
    opened = [o.target.as_context() for o in policy.opened]
    items = [{"metadata": {"name": f"{t.cluster}/{t.namespace}"}, **t.as_context(),
              "integration": None} for t in policy.owned_targets()[:1]
             if t.as_context() not in opened]
    items += [{"metadata": {"name": f"{o.cluster}/{o.namespace}"}, **o.target.as_context(),
               "integration": o.integration} for o in policy.opened]
    return paginate(items, query if query.sort else ListQuery(
        query.start, query.limit, query.filter, "name", True))
