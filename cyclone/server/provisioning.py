"""Tenant provisioning as a controller: one level-based reconcile per tenant.

From the tenant's record (its metadata namespace) and its Cluster integrations marked
``isWorkerCluster`` (the intent), the reconcile makes, in each opened cluster, the
workload namespace, the tenant's ResourceQuota, the tenant PVC, the watchdog token Secret
and the PVC watchdog pod, and records the opening on the ExecutionCluster; the default
tenant also gets its home PVC. What the ExecutionClusters record for the tenant but no
intent asks for any more (a closed or deleted integration, a tenant being deleted) is
removed, through the cluster the record names. A finalizer holds a tenant's metadata
namespace until that is done, so nothing of a deleted tenant is left in remote clusters.

The controller runs in the server process (it issues the watchdog tokens); request
handlers write the intent and then wait, bounded, for a reconcile of the tenant
(`wait_for_tenant`), whose refusal for an integration (`failure`) they answer with.
Remote clusters are not watched: a tenant with an opened remote cluster is reconciled
again every `resync_seconds`. The outcome of each opening (Ready, or why it is refused) is
recorded on the integration's Secret (`cyclone.api.integration.ANNOTATION_PROVISIONING`),
so every server replica can show it, not only the one running this controller.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar

from cyclone.api import keys
from cyclone.api.tenant import TenantSpec
from cyclone.engine.core import provisioning as plan
from cyclone.engine.core.tenancy import (
    OPENED_PREFIX,
    Opened,
    claimed_by_other,
    opened_by,
    record_patch,
)
from cyclone.kube import errors, kinds
from cyclone.kube.clock import SYSTEM_CLOCK, Clock
from cyclone.kube.controller import Controller
from cyclone.kube.informer import Informer
from cyclone.kube.protocol import Cluster
from cyclone.server.dialing import dialled
from cyclone.server.execution_credentials import execution_credential
from cyclone.server.integration_records import (
    list_integration_secrets,
    spec_of_secret,
    write_provisioning_outcome,
)
from cyclone.server.provisioning_cache import ProvisioningCaches, RemoteOpenings
from cyclone.server.provisioning_checks import check_placement, get_or_none, refused
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import is_tenant_record, spec_of_namespace, tenant_name_of
from cyclone.server.watchdog import (
    WATCHDOG_IMAGE,
    WATCHDOG_TOKEN_SECRET,
    AuthorityTokens,
    Tokens,
    watchdog_pod,
    watchdog_pod_name,
    watchdog_token_id,
    watcher_wanted,
)

log = logging.getLogger(__name__)
RECORD_ATTEMPTS = 5
RESYNC_SECONDS = 60.0
WAIT_SECONDS = 30.0
PROVISIONER = "tenant_provisioner"
"""`ServerState.extras` key of the `TenantProvisioner` running in this process, if any."""

ClusterLookup = Callable[[dict], Awaitable[Cluster]]
_FROM_CACHE: ContextVar[bool] = ContextVar("provisioning_from_cache", default=False)


async def _create(cluster: Cluster, obj: dict) -> None:
    try:
        await cluster.create(obj, namespace=obj["metadata"].get("namespace"))
    except errors.AlreadyExists:
        pass


async def _delete(cluster: Cluster, kind: kinds.Kind, name: str, namespace: str | None = None
                  ) -> None:
    try:
        await cluster.delete(kind, name, namespace, propagation_policy="Background")
    except errors.NotFound:
        pass


def _tenant_of_namespace(ns: dict) -> str | None:
    if is_tenant_record(ns):
        return tenant_name_of(ns)
    return ((ns.get("metadata") or {}).get("labels") or {}).get(keys.LABEL_TENANT)


def _tenants_of_record(ec: dict) -> list[str]:
    labels = (ec.get("metadata") or {}).get("labels") or {}
    return [k[len(OPENED_PREFIX):] for k in labels if k.startswith(OPENED_PREFIX)]


class TenantProvisioner:
    """The provisioning controller of the control cluster `control`.

    `lookup` opens a remote cluster from a Cluster source (``{"credential": …}``; without
    it a `RemoteCluster` is built from the credential); `tokens` issues and revokes the
    watchdog tokens; `server_url` is how a watchdog pod reaches the server.
    """

    def __init__(self, control: Cluster, tokens: Tokens, *, server_url: str,
                 lookup: ClusterLookup | None = None, clock: Clock = SYSTEM_CLOCK,
                 resync_seconds: float = RESYNC_SECONDS, workers: int = 2,
                 watchdog_image: str = WATCHDOG_IMAGE) -> None:
        self.control = control
        self.watchdog_image = watchdog_image
        self.tokens = tokens
        self.server_url = server_url
        self.lookup = lookup
        self.resync_seconds = resync_seconds
        self.clock = clock
        self.controller = Controller("tenant-provisioning", self.reconcile, workers=workers,
                                     clock=clock)
        self.caches = ProvisioningCaches(control)
        self._started = asyncio.Event()
        self._failures: dict[tuple[str, str], errors.ApiError] = {}
        self._fresh: set[str] = set()
        self._remote = RemoteOpenings(clock, resync_seconds)

    # -- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch the control cluster and reconcile tenants until cancelled."""
        self.caches = ProvisioningCaches(self.control)
        informers: list[Informer] = self.caches.informers
        self.caches.watch(self.controller.queue.add, _tenant_of_namespace, _tenants_of_record)
        try:
            async with asyncio.TaskGroup() as group:
                for informer in informers:
                    group.create_task(informer.run())
                for informer in informers:
                    await informer.wait_synced()
                group.create_task(self.controller.run())
                self._started.set()
        finally:
            self._started.clear()

    @property
    def running(self) -> bool:
        return self._started.is_set()

    async def wait_for_tenant(self, tenant: str, timeout: float = WAIT_SECONDS) -> bool:  # noqa: ASYNC109
        """Requeue `tenant` and wait for a reconcile of it that started after this call
        (once the controller has started); False when none finished within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                await self._started.wait()
                self._fresh.add(tenant)
                await self.controller.requeue_and_wait(tenant)
        except TimeoutError:
            return False
        return True

    def failure(self, tenant: str, integration: str) -> errors.ApiError | None:
        """Why the last reconcile could not open `integration` of `tenant`, if it could not."""
        return self._failures.get((tenant, integration))

    # -- the reconcile -------------------------------------------------------------------

    async def reconcile(self, tenant: str) -> float | None:
        """Bring `tenant`'s openings to its intent.

        A reconcile a request handler waits for reads the control cluster live (the
        handler's write must be seen); any other reads it from the informer caches, and
        leaves an opened remote cluster alone until its resync is due or its intent changed.
        """
        cached = tenant not in self._fresh and self.caches.synced
        self._fresh.discard(tenant)
        _FROM_CACHE.set(cached)
        ns = await self._read(self.control, kinds.NAMESPACE, keys.tenant_namespace(tenant))
        live = is_tenant_record(ns) and not (ns or {})["metadata"].get("deletionTimestamp")
        wanted: dict[str, dict] = {}
        watched: set[str] = set()
        secrets: list[dict] = []
        spec = None
        if live:
            assert ns is not None
            if tenant != keys.DEFAULT_TENANT:
                ns = await self._ensure_finalizer(ns)
            spec = spec_of_namespace(ns)
            if plan.has_home_pvc(tenant):
                await self._ensure(self.control, kinds.PERSISTENT_VOLUME_CLAIM, plan.pvc_object(
                    tenant, keys.tenant_namespace(tenant), spec))
            secrets = (self.caches.integration_secrets(tenant) if cached
                       else await list_integration_secrets(self.control, tenant, "Cluster"))
            for secret in secrets:
                source = spec_of_secret(secret).get("cluster") or {}
                if source.get("isWorkerCluster") and not secret["metadata"].get(
                        "deletionTimestamp"):
                    wanted[secret["metadata"]["name"]] = source
                    if watcher_wanted(secret):
                        watched.add(secret["metadata"]["name"])
        problems: list[str] = []
        outcomes: dict[str, str] = {}
        for name, source in sorted(wanted.items()):
            assert spec is not None
            watcher = name in watched
            try:
                if not (cached and self._remote.current(
                        tenant, name, source, spec, watcher, self.caches.execution_clusters())):
                    await self._open(tenant, name, source, spec, watcher=watcher)
                    self._remote.made(tenant, name, source, spec, watcher)
            except errors.ApiError as exc:
                self._remote.forget(tenant, name)
                self._failures[(tenant, name)] = exc
                problems.append(f"{name}: {exc}")
                outcomes[name] = plan.provisioning_outcome(exc.code, exc.reason, exc.message)
            else:
                self._failures.pop((tenant, name), None)
                outcomes[name] = plan.provisioning_outcome(None)
        for secret in secrets:
            await write_provisioning_outcome(self.control, secret,
                                             outcomes.get(secret["metadata"]["name"]))
        for key in [k for k in self._failures if k[0] == tenant and k[1] not in wanted]:
            del self._failures[key]
        self._remote.keep_only(tenant, set(wanted))
        records = (self.caches.execution_clusters() if cached
                   else (await self.control.list(kinds.EXECUTION_CLUSTER)).items)
        kept = {(name, plan.execution_cluster_name(name, source),
                 plan.workload_namespace(tenant, source)) for name, source in wanted.items()}
        for opened in opened_by(tenant, records):
            if (opened.integration, opened.cluster, opened.namespace) in kept:
                continue
            try:
                await self._close(tenant, opened, records)
            except errors.ApiError as exc:
                problems.append(f"closing {opened.integration}: {exc}")
        if not live and ns is not None and not problems:
            await self._release_finalizer(ns)
        if problems:
            raise RuntimeError(f"provisioning of tenant {tenant}: " + "; ".join(problems))
        remote = any(not s.get("isControlCluster") for s in wanted.values())
        return self.resync_seconds if remote else None

    async def _read(self, cluster: Cluster, kind: kinds.Kind, name: str,
                    namespace: str | None = None) -> dict | None:
        """`kind` `name` from the informer caches when this reconcile reads them and they
        hold that kind of the control cluster; otherwise live. None: not found."""
        if cluster is self.control and _FROM_CACHE.get() and self.caches.covers(kind):
            return self.caches.get(kind, name, namespace)
        return await get_or_none(cluster, kind, name, namespace)

    async def _read_control(self, kind: kinds.Kind, name: str, namespace: str | None = None
                            ) -> dict | None:
        return await self._read(self.control, kind, name, namespace)

    async def _ensure(self, cluster: Cluster, kind: kinds.Kind, obj: dict) -> None:
        """Create `obj` unless it is there (AlreadyExists is someone quicker)."""
        meta = obj["metadata"]
        if await self._read(cluster, kind, meta["name"], meta.get("namespace")) is None:
            await _create(cluster, obj)

    async def _ensure_finalizer(self, ns: dict) -> dict:
        finalizers = ns["metadata"].get("finalizers") or []
        if plan.FINALIZER in finalizers:
            return ns
        try:
            return await self.control.patch(
                kinds.NAMESPACE, ns["metadata"]["name"],
                {"metadata": {"finalizers": [*finalizers, plan.FINALIZER]}},
                resource_version=ns["metadata"]["resourceVersion"])
        except errors.Conflict:
            if not _FROM_CACHE.get():
                raise
        _FROM_CACHE.set(False)
        return await self._ensure_finalizer(
            await self.control.get(kinds.NAMESPACE, ns["metadata"]["name"]))

    async def _release_finalizer(self, ns: dict) -> None:
        finalizers = ns["metadata"].get("finalizers") or []
        if plan.FINALIZER not in finalizers:
            return
        try:
            await self.control.patch(
                kinds.NAMESPACE, ns["metadata"]["name"],
                {"metadata": {"finalizers": [f for f in finalizers if f != plan.FINALIZER]}},
                resource_version=ns["metadata"]["resourceVersion"])
        except errors.NotFound:
            pass
        except errors.Conflict:
            if not _FROM_CACHE.get():
                raise
            _FROM_CACHE.set(False)
            fresh = await get_or_none(self.control, kinds.NAMESPACE, ns["metadata"]["name"])
            if fresh is not None:
                await self._release_finalizer(fresh)

    def _cluster(self, source: dict) -> AbstractAsyncContextManager[Cluster]:
        return dialled(self.control, self.lookup, source)

    async def _open(self, tenant: str, name: str, source: dict, spec: TenantSpec, *,
                    watcher: bool = True) -> None:
        """Make what the opening needs; the PVC watchdog only when `watcher` (else it is
        removed with its token Secret and its token revoked: the tenant stopped it; a start
        issues a new one)."""
        await check_placement(self.control, tenant, name, source, self._read_control)
        namespace = plan.workload_namespace(tenant, source)
        pvc = plan.workload_pvc(tenant, source)
        credential = {} if source.get("isControlCluster") else execution_credential(
            source.get("credential") or {})
        async with self._cluster(source) as cluster:
            refusal = plan.namespace_owner_refusal(
                tenant, await self._read(cluster, kinds.NAMESPACE, namespace))
            if refusal is not None:
                raise refused(refusal)
            await self._record(tenant, plan.execution_cluster_name(name, source), credential,
                               name, (namespace, pvc))
            await self._ensure(cluster, kinds.NAMESPACE, plan.namespace_object(tenant, namespace))
            await self._ensure_quota(cluster, tenant, namespace, spec)
            if not source.get("pvc"):
                await self._ensure(cluster, kinds.PERSISTENT_VOLUME_CLAIM,
                                   plan.pvc_object(tenant, namespace, spec))
            if not watcher:
                await self._remove_watchdog(cluster, tenant, name, namespace)
                return
            await self._ensure_watchdog_token(cluster, tenant, name, namespace)
            await self._ensure(cluster, kinds.POD,
                               watchdog_pod(tenant, namespace, pvc, self.server_url,
                                            self.watchdog_image))

    async def _ensure_quota(self, cluster: Cluster, tenant: str, namespace: str,
                            spec: TenantSpec) -> None:
        name = plan.quota_name(tenant)
        existing = await self._read(cluster, kinds.RESOURCE_QUOTA, name, namespace)
        if not spec.resource_quota:
            if existing is not None:
                await _delete(cluster, kinds.RESOURCE_QUOTA, name, namespace)
            return
        wanted = plan.quota_object(tenant, namespace, spec)
        if existing is None:
            try:
                await cluster.create(wanted, namespace=namespace)
                return
            except errors.AlreadyExists:
                existing = await get_or_none(cluster, kinds.RESOURCE_QUOTA, name, namespace)
        if existing is not None and plan.quota_differs(existing, wanted):
            wanted["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            try:
                await cluster.replace(wanted)
            except errors.Conflict:
                fresh = await get_or_none(cluster, kinds.RESOURCE_QUOTA, name, namespace)
                if fresh is None or not plan.quota_differs(fresh, wanted):
                    return
                wanted["metadata"]["resourceVersion"] = fresh["metadata"]["resourceVersion"]
                await cluster.replace(wanted)

    async def _ensure_watchdog_token(self, cluster: Cluster, tenant: str, integration: str,
                                     namespace: str) -> None:
        token_id = watchdog_token_id(integration)
        secret = await self._read(cluster, kinds.SECRET, WATCHDOG_TOKEN_SECRET, namespace)
        if secret is not None and await self._has_token(tenant, token_id):
            return
        token = await self.tokens.issue(tenant, f"PVC watchdog of integration {integration}",
                                        token_id)
        await _delete(cluster, kinds.SECRET, WATCHDOG_TOKEN_SECRET, namespace)
        await _create(cluster, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": WATCHDOG_TOKEN_SECRET, "namespace": namespace,
                         "labels": plan.provisioned_labels(tenant)},
            "data": {"token": base64.b64encode(token.encode()).decode()},
        })

    async def _remove_watchdog(self, cluster: Cluster, tenant: str, integration: str,
                               namespace: str) -> None:
        """Delete a stopped watchdog's pod and token Secret and revoke its token; what a
        cached reconcile finds gone already is left alone (its coming back is an event)."""
        for kind, name in ((kinds.POD, watchdog_pod_name(tenant)),
                           (kinds.SECRET, WATCHDOG_TOKEN_SECRET)):
            if await self._read(cluster, kind, name, namespace) is not None:
                await _delete(cluster, kind, name, namespace)
        token_id = watchdog_token_id(integration)
        if (self.caches.has_token(tenant, token_id) if _FROM_CACHE.get()
                else await self.tokens.has(tenant, token_id)):
            await self.tokens.revoke(tenant, token_id)

    async def _has_token(self, tenant: str, token_id: str) -> bool:
        """Whether the token record holds `token_id`; the cache answers yes, only the
        authority answers no."""
        if _FROM_CACHE.get() and self.caches.has_token(tenant, token_id):
            return True
        return await self.tokens.has(tenant, token_id)

    async def _record(self, tenant: str, name: str, credential: dict, integration: str,
                      opened: tuple[str, str]) -> None:
        """Create the ExecutionCluster, or add the tenant's entry to it, with optimistic
        concurrency so two tenants never both claim one namespace (a cached record that
        turns out stale is read again live)."""
        for attempt in range(RECORD_ATTEMPTS):
            ec = (await self._read_control(kinds.EXECUTION_CLUSTER, name) if attempt == 0
                  else await get_or_none(self.control, kinds.EXECUTION_CLUSTER, name))
            if ec is None:
                metadata = record_patch(None, tenant, integration, opened)["metadata"]
                metadata["labels"][keys.LABEL_POD_CREATED_BY] = keys.CREATED_BY_CYCLONE
                try:
                    await self.control.create({
                        "apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
                        "metadata": {"name": name, **metadata},
                        "spec": {"credential": credential},
                    })
                    return
                except errors.AlreadyExists:
                    continue
            refusal = plan.claim_refusal(claimed_by_other(ec, tenant, opened[0]), name,
                                         opened[0])
            if refusal is not None:
                raise refused(refusal)
            patch = record_patch(ec, tenant, integration, opened)
            if all((ec["metadata"].get(part) or {}).get(k) == v
                   for part, values in patch["metadata"].items() for k, v in values.items()):
                return
            try:
                await self.control.patch(kinds.EXECUTION_CLUSTER, name, patch,
                                         resource_version=ec["metadata"]["resourceVersion"])
                return
            except errors.Conflict:
                continue
        raise errors.Conflict(f"ExecutionCluster {name!r} kept changing; try again")

    async def _close(self, tenant: str, opened: Opened, records: list[dict]) -> None:
        ec = next((r for r in records if r["metadata"]["name"] == opened.cluster), None)
        if opened.cluster == keys.CONTROL_CLUSTER_NAME:
            source: dict = {"isControlCluster": True}
        else:
            source = {"clusterName": opened.cluster,
                      "credential": ((ec or {}).get("spec") or {}).get("credential") or {}}
        async with self._cluster(source) as cluster:
            namespace = opened.namespace
            await _delete(cluster, kinds.POD, watchdog_pod_name(tenant), namespace)
            await _delete(cluster, kinds.SECRET, WATCHDOG_TOKEN_SECRET, namespace)
            if opened.pvc == keys.tenant_pvc_name(tenant):
                await _delete(cluster, kinds.PERSISTENT_VOLUME_CLAIM, opened.pvc, namespace)
            await _delete(cluster, kinds.RESOURCE_QUOTA, plan.quota_name(tenant), namespace)
            if namespace != keys.tenant_namespace(tenant):
                ns = await get_or_none(cluster, kinds.NAMESPACE, namespace)
                if ns and (ns["metadata"].get("labels") or {}).get(keys.LABEL_TENANT) == tenant:
                    await _delete(cluster, kinds.NAMESPACE, namespace)
        await self.tokens.revoke(tenant, watchdog_token_id(opened.integration))
        await self._release(tenant, opened.cluster, opened.integration)

    async def _release(self, tenant: str, name: str, integration: str) -> None:
        """Drop this integration's entry; delete the ExecutionCluster when no tenant uses it."""
        for _ in range(RECORD_ATTEMPTS):
            ec = await get_or_none(self.control, kinds.EXECUTION_CLUSTER, name)
            if ec is None:
                return
            try:
                updated = await self.control.patch(
                    kinds.EXECUTION_CLUSTER, name, record_patch(ec, tenant, integration, None),
                    resource_version=ec["metadata"]["resourceVersion"])
            except errors.Conflict:
                continue
            except errors.NotFound:
                return
            labels = updated["metadata"].get("labels") or {}
            if name != keys.CONTROL_CLUSTER_NAME and not any(
                    k.startswith(OPENED_PREFIX) for k in labels):
                await _delete(self.control, kinds.EXECUTION_CLUSTER, name)
            return
        raise errors.Conflict(f"ExecutionCluster {name!r} kept changing; try again")


def provisioner_for(state: ServerState, clock: Clock = SYSTEM_CLOCK) -> TenantProvisioner:
    """The provisioning controller of a server: its cluster, token authority, remote
    cluster lookup and URL."""
    return TenantProvisioner(state.cluster, AuthorityTokens(state.auth),
                             server_url=state.server_url, lookup=state.clusters, clock=clock,
                             watchdog_image=state.settings.gc_image)


async def run_provisioning(state: ServerState) -> None:
    """Run the provisioning controller of `state` until cancelled; handlers of this process
    wait for it meanwhile."""
    provisioner = provisioner_for(state)
    state.extras[PROVISIONER] = provisioner
    try:
        await provisioner.run()
    finally:
        if state.extras.get(PROVISIONER) is provisioner:
            del state.extras[PROVISIONER]
