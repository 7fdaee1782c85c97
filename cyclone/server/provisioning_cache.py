"""What the tenant provisioning controller knows of the control cluster: its informer caches.

A reconcile that finds everything in place reads nothing from the API server: the tenant's
metadata namespace, its Cluster integrations, the ExecutionClusters, the token record and
what the controller provisioned in control-cluster namespaces come from these caches. A
cache can lag behind the API server, so only "present" is trusted as it stands; what the
cache misses is created (AlreadyExists is tolerated) or read live by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from cyclone.api import keys
from cyclone.api.tenant import TenantSpec
from cyclone.engine.core import provisioning as plan
from cyclone.engine.core.tenancy import opened_by
from cyclone.kube import kinds
from cyclone.kube.clock import Clock
from cyclone.kube.informer import Informer
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import TOKEN_SECRET_NAME

Enqueue = Callable[[str], None]


def _labels(obj: dict | None) -> dict:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _tenant_label(obj: dict) -> str | None:
    return _labels(obj).get(keys.LABEL_TENANT)


def _tenant_of_namespaced(obj: dict) -> str | None:
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    if namespace.startswith(keys.TENANT_NAMESPACE_PREFIX):
        return namespace[len(keys.TENANT_NAMESPACE_PREFIX):]
    return None


class ProvisioningCaches:
    """The informers of the control cluster `control` the provisioning controller reads."""

    def __init__(self, control: Cluster) -> None:
        created = f"{keys.LABEL_POD_CREATED_BY}={keys.CREATED_BY_CYCLONE},{keys.LABEL_TENANT}"
        self.namespaces = Informer(control, kinds.NAMESPACE)
        self.integrations = Informer(control, kinds.SECRET,
                                     label_selector=f"{keys.LABEL_INTEGRATION_TYPE}=Cluster")
        self.provisioned_secrets = Informer(control, kinds.SECRET, label_selector=created)
        self.quotas = Informer(control, kinds.RESOURCE_QUOTA, label_selector=created)
        self.pvcs = Informer(control, kinds.PERSISTENT_VOLUME_CLAIM, label_selector=created)
        self.watchdogs = Informer(
            control, kinds.POD,
            label_selector=f"{keys.LABEL_POD_KIND}={keys.POD_KIND_PVC_WATCHER}")
        self.records = Informer(control, kinds.EXECUTION_CLUSTER)
        self.tokens = Informer(control, kinds.SECRET,
                               field_selector=f"metadata.name={TOKEN_SECRET_NAME}")
        self._by_kind: dict[str, list[Informer]] = {
            "Namespace": [self.namespaces],
            "Secret": [self.integrations, self.provisioned_secrets],
            "ResourceQuota": [self.quotas],
            "PersistentVolumeClaim": [self.pvcs],
            "Pod": [self.watchdogs],
            "ExecutionCluster": [self.records],
        }

    @property
    def informers(self) -> list[Informer]:
        return [self.namespaces, self.integrations, self.provisioned_secrets, self.quotas,
                self.pvcs, self.watchdogs, self.records, self.tokens]

    @property
    def synced(self) -> bool:
        return all(informer.synced for informer in self.informers)

    def watch(self, enqueue: Enqueue, tenants_of_namespace: Callable[[dict], str | None],
              tenants_of_record: Callable[[dict], list[str]]) -> None:
        """Enqueue the tenant of each event that can change what a reconcile decides.

        A watchdog pod's status updates cannot (the controller only recreates a missing
        pod), so only its appearing and disappearing count.
        """

        def on(informer: Informer, key_fn: Callable[[dict], object],
               types: tuple[str, ...] = ("ADDED", "MODIFIED", "DELETED")) -> None:
            def handler(event_type: str, obj: dict, old: dict | None) -> None:
                if event_type not in types:
                    return
                for candidate in (obj, old):
                    found = key_fn(candidate) if candidate is not None else None
                    for key in [found] if isinstance(found, str) else (found or []):
                        enqueue(key)
            informer.add_handler(handler)

        on(self.namespaces, tenants_of_namespace)
        on(self.integrations, _tenant_of_namespaced)
        on(self.tokens, _tenant_of_namespaced)
        for informer in (self.provisioned_secrets, self.quotas, self.pvcs):
            on(informer, _tenant_label)
        on(self.watchdogs, _tenant_label, ("ADDED", "DELETED"))
        on(self.records, tenants_of_record)

    def get(self, kind: kinds.Kind, name: str, namespace: str | None = None) -> dict | None:
        """The cached object, None when no cache holds it (it may still exist unlabelled)."""
        for informer in self._by_kind.get(kind.kind, []):
            found = informer.get(namespace, name)
            if found is not None:
                return found
        return None

    def covers(self, kind: kinds.Kind) -> bool:
        return kind.kind in self._by_kind

    def integration_secrets(self, tenant: str) -> list[dict]:
        return self.integrations.list(keys.tenant_namespace(tenant))

    def execution_clusters(self) -> list[dict]:
        return self.records.list()

    def has_token(self, tenant: str, token_id: str) -> bool:
        secret = self.tokens.get(keys.tenant_namespace(tenant), TOKEN_SECRET_NAME)
        return token_id in ((secret or {}).get("data") or {})


def _fingerprint(source: dict, spec: TenantSpec, watcher: bool) -> str:
    return json.dumps([source, spec.model_dump(mode="json"), watcher], sort_keys=True)


class RemoteOpenings:
    """When each remote opening was last made, and from what intent (the Cluster source,
    the tenant's spec and whether the PVC watchdog runs).

    Remote clusters are not watched, so what the controller made there is read live; but
    only when the opening's intent changed or `period` has passed since it was made, not
    on every event of the tenant.
    """

    def __init__(self, clock: Clock, period: float) -> None:
        self._clock = clock
        self._period = period
        self._made: dict[tuple[str, str], tuple[str, float]] = {}

    def made(self, tenant: str, name: str, source: dict, spec: TenantSpec,
             watcher: bool) -> None:
        if not source.get("isControlCluster"):
            self._made[(tenant, name)] = (_fingerprint(source, spec, watcher),
                                          self._clock.monotonic())

    def forget(self, tenant: str, name: str) -> None:
        self._made.pop((tenant, name), None)

    def keep_only(self, tenant: str, names: set[str]) -> None:
        for key in [k for k in self._made if k[0] == tenant and k[1] not in names]:
            del self._made[key]

    def current(self, tenant: str, name: str, source: dict, spec: TenantSpec,
                watcher: bool, records: list[dict]) -> bool:
        """Whether the remote opening `name` was made from this same intent less than a
        period ago, and the ExecutionClusters (`records`) still record it."""
        made = self._made.get((tenant, name))
        if source.get("isControlCluster") or made is None:
            return False
        fingerprint, at = made
        if fingerprint != _fingerprint(source, spec, watcher) or (
                self._clock.monotonic() - at >= self._period):
            return False
        opening = (name, plan.execution_cluster_name(name, source),
                   plan.workload_namespace(tenant, source))
        return any((o.integration, o.cluster, o.namespace) == opening
                   for o in opened_by(tenant, records))
