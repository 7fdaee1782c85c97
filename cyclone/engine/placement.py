"""Where a run's pods go (execution cluster, workload namespace, tenant PVC), and what the
engine reads to decide whether the run's tenant may go there."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cyclone.api import keys
from cyclone.engine.core import tenancy
from cyclone.engine.core.serversettings import no_cluster_problem
from cyclone.engine.core.tenancy import TenantPolicy, Violation
from cyclone.kube import kinds
from cyclone.kube.errors import ApiError, NotFound
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

tenant_of = tenancy.tenant_of
_unreadable_tenants: set[str] = set()
"""Tenants whose Namespace the engine was refused, already logged once."""


@dataclass(frozen=True)
class ExecutionTarget:
    cluster: str
    namespace: str
    pvc: str


def execution_target(run: dict) -> ExecutionTarget:
    """The run's ``spec.executionContext``, with the control cluster, the run's own
    namespace and the tenant PVC as defaults.

    A run the tenant boundary refused never reaches its context: whatever is done for it
    afterwards (its GC) happens at the tenant's home.
    """
    namespace = run["metadata"]["namespace"]
    overall = ((run.get("status") or {}).get("overall") or {})
    if overall.get("reason") == tenancy.REASON_TENANCY_VIOLATION:
        home = tenancy.home_target(tenant_of(namespace))
        return ExecutionTarget(home.cluster, home.namespace, home.pvc)
    target = tenancy.target_of(namespace, (run.get("spec") or {}).get("executionContext"))
    return ExecutionTarget(target.cluster, target.namespace, target.pvc)


def run_key_of_pod(pod: dict) -> tuple[str, str] | None:
    """(namespace, name) of the run a Cyclone pod belongs to, or None."""
    meta = pod.get("metadata") or {}
    run = (meta.get("labels") or {}).get(keys.LABEL_WORKFLOWRUN)
    if not run:
        return None
    namespace = (meta.get("annotations") or {}).get(keys.ANNOTATION_META_NAMESPACE)
    return (namespace or meta.get("namespace") or "", run)


async def _get(cluster: Cluster, kind: kinds.Kind, name: str) -> dict | None:
    try:
        return await cluster.get(kind, name)
    except NotFound:
        return None


async def read_policy(control: Cluster, tenant: str, clusters: Iterable[str] = ()) -> TenantPolicy:
    """The tenant's policy from its metadata Namespace and the ExecutionClusters named.

    A Namespace the engine cannot read counts as one that allows no pod feature.
    """
    try:
        namespace = await _get(control, kinds.NAMESPACE, keys.tenant_namespace(tenant))
    except ApiError as exc:
        if tenant not in _unreadable_tenants:
            _unreadable_tenants.add(tenant)
            log.warning("cannot read the namespace of tenant %s, so no pod feature is "
                        "allowed for it: %s", tenant, exc)
        namespace = None
    execution_clusters = []
    for name in dict.fromkeys(clusters):
        found = await _get(control, kinds.EXECUTION_CLUSTER, name)
        if found is not None:
            execution_clusters.append(found)
    return tenancy.policy_for(tenant, namespace, execution_clusters)


async def checked_execution_target(control: Cluster, run: dict) -> ExecutionTarget:
    """The run's execution target if its tenant owns it, else the tenant's home.

    For work done on a run after it was admitted (its GC), whose ``executionContext`` may
    have been edited since: nothing is ever created where the tenant may not go.
    """
    target = execution_target(run)
    namespace = run["metadata"]["namespace"]
    policy = await read_policy(control, tenant_of(namespace), [target.cluster])
    if tenancy.execution_context_violations(policy, dataclasses.asdict(target)):
        home = tenancy.home_target(tenant_of(namespace))
        return ExecutionTarget(home.cluster, home.namespace, home.pvc)
    return target


async def admission_violations(control: Cluster, run: dict, workflow: dict,
                               stages: Mapping[str, dict]) -> list[Violation]:
    """What the run, its workflow and stages ask for that the run's tenant may not have."""
    namespace = run["metadata"]["namespace"]
    target = tenancy.target_of(namespace, (run.get("spec") or {}).get("executionContext"))
    policy = await read_policy(control, tenant_of(namespace), [target.cluster])
    found = tenancy.admission_violations(policy, run, workflow, stages)
    if not found and not policy.opened:
        problem = await _no_cluster_problem(control, policy.tenant, target)
        if problem is not None:
            found.append(Violation("spec.executionContext", problem))
    return found


async def _no_cluster_problem(control: Cluster, tenant: str,
                              target: tenancy.Target) -> str | None:
    """Why the run cannot start at its tenant's home, where no PVC was ever made for it."""
    if target != tenancy.home_target(tenant) or tenant == keys.DEFAULT_TENANT:
        return None
    try:
        record = await _get(control, kinds.NAMESPACE, keys.tenant_namespace(tenant))
    except ApiError:
        return None
    annotations = ((record or {}).get("metadata") or {}).get("annotations") or {}
    if keys.ANNOTATION_TENANT_INFO not in annotations:
        return None
    listed = await control.list(kinds.EXECUTION_CLUSTER)
    return no_cluster_problem(tenant, True, bool(tenancy.opened_by(tenant, listed.items)), True)


async def execution_context(cluster: Cluster, tenant: str,
                            given: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The ``executionContext`` of a new run of the tenant: what it gives, completed with
    the tenant's first opened cluster (else its home in the control cluster).

    Every new run gets its execution context here, through `cyclone.engine.runstart.start_run`.
    """
    filled = tenancy.fill_execution_context(given, {})
    if filled.get("cluster") and filled.get("namespace"):
        return filled
    listed = await cluster.list(kinds.EXECUTION_CLUSTER)
    return tenancy.fill_execution_context(
        given, tenancy.choose_execution_context(tenant, listed.items))
