"""What the controllers read: informer caches of the control cluster and of every
execution cluster, behind a narrow interface so the reconcile code does not depend on how
the caches are fed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cyclone.kube.informer import Informer
from cyclone.kube.protocol import Cluster


class ObjectCache(Protocol):
    """The read side of `cyclone.kube.informer.Informer`."""

    def get(self, namespace: str | None, name: str) -> dict | None: ...

    def list(
        self, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict]: ...


class IndexedCache(ObjectCache, Protocol):
    """An `ObjectCache` that also finds objects by the value of a named index."""

    def by_index(self, index: str, value: str) -> list[dict]: ...


@dataclass
class ExecutionCluster:
    """A cluster pods run in, with the cache of Cyclone's pods in it."""

    name: str
    cluster: Cluster
    pods: ObjectCache
    events: ObjectCache | None = None

    def unreachable(self) -> tuple[float, str | None]:
        """(seconds the pod cache has failed to reach the cluster, last error)."""
        seconds = getattr(self.pods, "unreachable_for", None)
        if seconds is None:
            return 0.0, None
        return seconds(), getattr(self.pods, "last_error", None)

    def pod_events(self, namespace: str | None, pod: str) -> list[dict]:
        """Events about a pod (all types; the core keeps the non-Normal ones)."""
        if self.events is None:
            return []
        return [
            event for event in self.events.list(namespace)
            if (event.get("involvedObject") or {}).get("name") == pod
            and (event.get("involvedObject") or {}).get("kind", "Pod") == "Pod"
        ]


@dataclass
class ControlCaches:
    runs: ObjectCache
    workflows: ObjectCache
    stages: ObjectCache
    resources: ObjectCache
    projects: ObjectCache
    run_stages: ObjectCache | None = None
    """The stage chunks of large runs (`cyclone.api.stagechunks`)."""
    tenant_namespaces: Informer | None = None
    """The tenants' metadata Namespaces; with `execution_clusters`, where the run
    controller reads tenant policies from (`policies.TenantPolicies`)."""
    execution_clusters: Informer | None = None
    execution: dict[str, ExecutionCluster] = field(default_factory=dict)
    cluster_problem: Callable[[str], str | None] = lambda _name: None
    """Why a cluster that is not in `execution` is missing: a message when it cannot be
    used, "" while it is being connected, None when nothing describes it."""

    def execution_cluster(self, name: str) -> ExecutionCluster | None:
        return self.execution.get(name)
