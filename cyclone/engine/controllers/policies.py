"""Tenant policies for the run controller, read from informers.

Admission and every reconcile that starts stages need the run's tenant policy: the
tenant's metadata Namespace and the ExecutionCluster the run goes to. Read from the API
server, that was two GETs per reconcile, which on a real cluster share the engine's
client-side request limit with its writes. From informers they cost nothing.

A cache can lag a change by the time a watch event takes. Nothing is refused on it: the
caller checks with the cached policy, and whatever that refuses is checked again with a
fresh read, which alone refuses. A policy that was narrowed
can therefore still allow for that lag, as it would for a run admitted just before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cyclone.api import keys
from cyclone.engine.core.tenancy import TenantPolicy
from cyclone.engine.placement import read_policy
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.informer import Informer
from cyclone.kube.protocol import Cluster, ObjectList

TENANT_NAMESPACES_SELECTOR = keys.LABEL_TENANT
"""The metadata Namespaces of tenants carry this label (`tenant_records`)."""


class InformedReads:
    """The Namespace and ExecutionCluster reads of `cyclone.engine.placement`, from
    informers once they have synced: a Namespace missing from the cache is read from the
    API (a tenant just made, or a Namespace without the label); an ExecutionCluster missing
    from a synced cache does not exist. Every other read goes to the API."""

    def __init__(self, control: Cluster, namespaces: Informer,
                 execution_clusters: Informer) -> None:
        self.control = control
        self.namespaces = namespaces
        self.execution_clusters = execution_clusters

    async def get(self, kind: kinds.Kind, name: str, namespace: str | None = None) -> dict:
        if kind == kinds.NAMESPACE and self.namespaces.synced:
            found = self.namespaces.get(None, name)
            if found is not None:
                return found
        elif kind == kinds.EXECUTION_CLUSTER and self.execution_clusters.synced:
            found = self.execution_clusters.get(None, name)
            if found is None:
                raise NotFound(f'executionclusters.{keys.GROUP} "{name}" not found')
            return found
        return await self.control.get(kind, name, namespace)

    async def list(self, kind: kinds.Kind, namespace: str | None = None,
                   **selectors: Any) -> ObjectList:
        if kind == kinds.EXECUTION_CLUSTER and self.execution_clusters.synced \
                and not any(selectors.values()):
            return ObjectList(self.execution_clusters.list(),
                              self.execution_clusters.resource_version or "")
        return await self.control.list(kind, namespace, **selectors)


class TenantPolicies:
    """Tenant policies from the informers (`cached`, and `reads` for the admission
    checks), and from the API (`fresh`) to confirm a refusal."""

    def __init__(self, control: Cluster, namespaces: Informer,
                 execution_clusters: Informer) -> None:
        self.control = control
        self.reads = InformedReads(control, namespaces, execution_clusters)

    async def cached(self, tenant: str, clusters: Iterable[str] = ()) -> TenantPolicy:
        return await read_policy(self.reads, tenant, clusters)  # type: ignore[arg-type]

    async def fresh(self, tenant: str, clusters: Iterable[str] = ()) -> TenantPolicy:
        return await read_policy(self.control, tenant, clusters)


def tenant_namespaces(control: Cluster) -> Informer:
    """An informer of the tenants' metadata Namespaces."""
    return Informer(control, kinds.NAMESPACE, label_selector=TENANT_NAMESPACES_SELECTOR)
