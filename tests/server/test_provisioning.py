"""The tenant provisioning controller, on the embedded cluster and a real API server.

The controller runs on a ManualClock: its retries and its resync of remote clusters happen
when the test moves the clock. The "worker" cluster is reached through the remote-cluster
lookup (the path every non-control cluster takes), which here answers with the same
cluster, so each test sees what a worker cluster would hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clusters import CLUSTER_FACTORIES, REAL_CLUSTERS, cluster_params, eventually

from cyclone.api import keys
from cyclone.api.integration import ANNOTATION_PROVISIONING
from cyclone.api.tenant import TenantPVC, TenantSpec
from cyclone.engine.core.provisioning import FINALIZER, provisioning_outcome, quota_name
from cyclone.engine.core.tenancy import opened_by
from cyclone.kube import errors, kinds
from cyclone.kube.clock import ManualClock
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import TokenAuthority
from cyclone.server.integration_records import secret_object
from cyclone.server.provisioning import TenantProvisioner
from cyclone.server.tenant_records import ensure_tenant, tenant_namespace_object
from cyclone.server.watchdog import WATCHDOG_TOKEN_SECRET, AuthorityTokens, watchdog_pod_name

from .helpers import ADMIN_TOKEN, make_client

QUOTA = {"limits.cpu": "2", "limits.memory": "2Gi"}


@pytest.fixture(params=cluster_params())
async def control(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with CLUSTER_FACTORIES[request.param](tmp_path) as cluster:
        if request.param in REAL_CLUSTERS:
            from support.kube_engine import install_crds

            await install_crds(cluster)  # type: ignore[arg-type]
        yield cluster
        await _forget_records(cluster)


async def _forget_records(cluster: Cluster) -> None:
    """The ExecutionClusters a test's tenants opened, deleted (the real API server is
    shared by the session)."""
    for ec in (await cluster.list(kinds.EXECUTION_CLUSTER)).items:
        if any(opened_by(t, [ec]) for t in CREATED_TENANTS):
            with contextlib.suppress(errors.NotFound):
                await cluster.delete(kinds.EXECUTION_CLUSTER, ec["metadata"]["name"])
    CREATED_TENANTS.clear()


CREATED_TENANTS: list[str] = []


class Running:
    """A provisioner running on a ManualClock until `stop`."""

    def __init__(self, control: Cluster, clock: ManualClock) -> None:
        self.clock = clock

        async def lookup(_source: dict) -> Cluster:
            return control

        self.provisioner = TenantProvisioner(
            control, AuthorityTokens(TokenAuthority(control, "admin-token")),
            server_url="http://cyclone.test:7099", lookup=lookup, clock=clock)
        self.task = asyncio.create_task(self.provisioner.run())

    async def started(self) -> Running:
        await eventually(lambda: self.provisioner.running, timeout=30)
        return self

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def until(self, probe, timeout: float = 30.0):  # noqa: ASYNC109
        """`probe`'s truthy answer, moving the clock on so that retries and resyncs run."""
        async def moved():
            self.clock.advance(5)
            return await probe()
        return await eventually(moved, timeout=timeout)


@pytest.fixture
async def running(control: Cluster) -> AsyncIterator[Running]:
    runner = await Running(control, ManualClock()).started()
    try:
        yield runner
    finally:
        await runner.stop()


def _name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


async def _tenant(control: Cluster, quota: dict | None = None) -> str:
    tenant = _name("t")
    CREATED_TENANTS.append(tenant)
    spec = TenantSpec(resource_quota=quota or dict(QUOTA),
                      persistent_volume_claim=TenantPVC(size="1Gi"))
    await control.create(tenant_namespace_object(tenant, spec))
    return tenant


async def _integration(control: Cluster, tenant: str, name: str, cluster: dict) -> None:
    """A Cluster integration of `tenant` that asks to be opened, written straight into the
    tenant's namespace (what a tenant with kubectl rights there can do too)."""
    spec = {"type": "Cluster", "cluster": {"isWorkerCluster": True, **cluster}}
    await control.create(secret_object(name, keys.tenant_namespace(tenant), "Cluster", spec),
                         namespace=keys.tenant_namespace(tenant))


async def _get(cluster: Cluster, kind, name: str, namespace: str | None = None) -> dict | None:
    try:
        found = await cluster.get(kind, name, namespace)
    except errors.NotFound:
        return None
    return None if found["metadata"].get("deletionTimestamp") else found


async def _provisioned(cluster: Cluster, tenant: str, namespace: str) -> bool:
    return all([
        await _get(cluster, kinds.NAMESPACE, namespace),
        await _get(cluster, kinds.RESOURCE_QUOTA, quota_name(tenant), namespace),
        await _get(cluster, kinds.PERSISTENT_VOLUME_CLAIM, keys.tenant_pvc_name(tenant),
                   namespace),
        await _get(cluster, kinds.SECRET, WATCHDOG_TOKEN_SECRET, namespace),
        await _get(cluster, kinds.POD, watchdog_pod_name(tenant), namespace),
    ])


async def _nothing_left(cluster: Cluster, tenant: str, namespace: str, ec: str) -> bool:
    return not any([
        await _get(cluster, kinds.NAMESPACE, namespace),
        await _get(cluster, kinds.RESOURCE_QUOTA, quota_name(tenant), namespace),
        await _get(cluster, kinds.POD, watchdog_pod_name(tenant), namespace),
        opened_by(tenant, [e for e in [await _get(cluster, kinds.EXECUTION_CLUSTER, ec)] if e]),
    ])


async def test_deleted_quota_and_watchdog_pod_and_token_come_back(control, running):
    tenant = await _tenant(control)
    namespace, ec = f"{tenant}-work", _name("w")
    await _integration(control, tenant, "worker", {"clusterName": ec, "namespace": namespace,
                                                   "credential": {"server": "https://w"}})
    await running.until(lambda: _provisioned(control, tenant, namespace))
    first_pod = await control.get(kinds.POD, watchdog_pod_name(tenant), namespace)
    await control.delete(kinds.RESOURCE_QUOTA, quota_name(tenant), namespace)
    await control.delete(kinds.POD, watchdog_pod_name(tenant), namespace, grace_period_seconds=0)
    await control.delete(kinds.SECRET, WATCHDOG_TOKEN_SECRET, namespace)

    async def recreated() -> bool:
        pod = await _get(control, kinds.POD, watchdog_pod_name(tenant), namespace)
        return bool(pod) and pod["metadata"]["uid"] != first_pod["metadata"]["uid"] and \
            await _provisioned(control, tenant, namespace)

    await running.until(recreated)


async def test_a_deleted_tenant_pvc_comes_back(control, running):
    tenant = await _tenant(control)
    namespace = f"{keys.tenant_namespace(tenant)}-work"
    await _integration(control, tenant, "local", {"isControlCluster": True,
                                                  "namespace": namespace})
    await running.until(lambda: _provisioned(control, tenant, namespace))
    pvc = keys.tenant_pvc_name(tenant)
    first = await control.get(kinds.PERSISTENT_VOLUME_CLAIM, pvc, namespace)
    await control.delete(kinds.POD, watchdog_pod_name(tenant), namespace, grace_period_seconds=0)
    await control.delete(kinds.PERSISTENT_VOLUME_CLAIM, pvc, namespace)

    async def recreated() -> bool:
        found = await _get(control, kinds.PERSISTENT_VOLUME_CLAIM, pvc, namespace)
        return bool(found) and found["metadata"]["uid"] != first["metadata"]["uid"]

    await running.until(recreated, timeout=60)


async def test_a_quota_change_reaches_every_opened_cluster(control, running):
    tenant = await _tenant(control)
    places = {"a": (_name("a"), f"{tenant}-a"), "b": (_name("b"), f"{tenant}-b")}
    for integration, (ec, namespace) in places.items():
        await _integration(control, tenant, integration, {
            "clusterName": ec, "namespace": namespace, "credential": {"server": "https://w"}})
    for _, namespace in places.values():
        await running.until(lambda ns=namespace: _provisioned(control, tenant, ns))

    ns = await control.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
    wanted = {"limits.cpu": "16", "requests.memory": "1Gi"}
    updated = tenant_namespace_object(tenant, TenantSpec(resource_quota=wanted))
    ns["metadata"]["annotations"] = updated["metadata"]["annotations"]
    await control.replace(ns)

    async def everywhere() -> bool:
        for _, namespace in places.values():
            quota = await _get(control, kinds.RESOURCE_QUOTA, quota_name(tenant), namespace)
            if not quota or quota["spec"]["hard"] != wanted:
                return False
        return True

    await running.until(everywhere)


async def test_deleting_the_tenant_removes_what_it_provisioned_in_the_worker(control, running):
    tenant = await _tenant(control)
    namespace, ec = f"{tenant}-work", _name("w")
    await _integration(control, tenant, "worker", {"clusterName": ec, "namespace": namespace,
                                                   "credential": {"server": "https://w"}})
    await running.until(lambda: _provisioned(control, tenant, namespace))
    metadata = await control.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
    assert FINALIZER in metadata["metadata"]["finalizers"]

    await control.delete(kinds.NAMESPACE, keys.tenant_namespace(tenant))

    await running.until(lambda: _nothing_left(control, tenant, namespace, ec))
    assert await _get(control, kinds.EXECUTION_CLUSTER, ec) is None

    async def finalizer_released() -> bool:
        ns = await _get_even_deleting(control, keys.tenant_namespace(tenant))
        return ns is None or FINALIZER not in (ns["metadata"].get("finalizers") or [])

    await running.until(finalizer_released)


async def _get_even_deleting(cluster: Cluster, name: str) -> dict | None:
    try:
        return await cluster.get(kinds.NAMESPACE, name)
    except errors.NotFound:
        return None


async def test_restarting_mid_way_converges_without_duplicates(control):
    clock = ManualClock()
    tenant = await _tenant(control)
    namespace, ec = f"{tenant}-work", _name("w")
    await _integration(control, tenant, "worker", {"clusterName": ec, "namespace": namespace,
                                                   "credential": {"server": "https://w"}})
    first = await Running(control, clock).started()
    try:
        await first.until(lambda: _get(control, kinds.NAMESPACE, namespace))
    finally:
        await first.stop()
    second = await Running(control, clock).started()
    try:
        await second.until(lambda: _provisioned(control, tenant, namespace))
        await second.provisioner.wait_for_tenant(tenant)
    finally:
        await second.stop()
    labelled = f"{keys.LABEL_TENANT}={tenant}"
    assert len((await control.list(kinds.POD, namespace, label_selector=labelled)).items) == 1
    assert len((await control.list(kinds.RESOURCE_QUOTA, namespace)).items) == 1
    record = await control.get(kinds.EXECUTION_CLUSTER, ec)
    assert [o.namespace for o in opened_by(tenant, [record])] == [namespace]
    tokens = await TokenAuthority(control, "admin-token").list_tokens(tenant)
    assert [t["id"] for t in tokens] == ["pvc-watcher-worker"]


async def test_a_tenant_writing_its_own_intent_cannot_claim_another_tenants_places(
        control, running):
    victim = await _tenant(control)
    victim_ns, ec = f"{victim}-work", _name("w")
    await _integration(control, victim, "worker", {"clusterName": ec, "namespace": victim_ns,
                                                   "credential": {"server": "https://w"}})
    await running.until(lambda: _provisioned(control, victim, victim_ns))
    attacker = await _tenant(control)
    attempts = {
        "same-ns": {"clusterName": ec, "namespace": victim_ns,
                    "credential": {"server": "https://w"}},
        "metadata-ns": {"clusterName": _name("x"), "namespace": keys.tenant_namespace(victim),
                        "credential": {"server": "https://w"}},
        "control-ns": {"isControlCluster": True, "namespace": f"{keys.tenant_namespace(victim)}-x"},
        "victim-pvc": {"clusterName": _name("y"), "namespace": f"{attacker}-own",
                       "pvc": keys.tenant_pvc_name(victim), "credential": {"server": "https://w"}},
    }
    for integration, cluster in attempts.items():
        await _integration(control, attacker, integration, cluster)

    async def all_refused() -> bool:
        await running.provisioner.wait_for_tenant(attacker)
        return all(running.provisioner.failure(attacker, i) for i in attempts)

    await running.until(all_refused)
    assert isinstance(running.provisioner.failure(attacker, "same-ns"), errors.Conflict)
    for integration in ("metadata-ns", "control-ns", "victim-pvc"):
        assert isinstance(running.provisioner.failure(attacker, integration), errors.Forbidden)
    records = (await control.list(kinds.EXECUTION_CLUSTER)).items
    assert opened_by(attacker, records) == ()
    assert await _get(control, kinds.RESOURCE_QUOTA, quota_name(attacker), victim_ns) is None
    assert await _get(control, kinds.RESOURCE_QUOTA, quota_name(attacker),
                      keys.tenant_namespace(victim)) is None
    assert await _get(control, kinds.NAMESPACE, f"{keys.tenant_namespace(victim)}-x") is None
    assert await _get(control, kinds.NAMESPACE, f"{attacker}-own") is None
    assert await _provisioned(control, victim, victim_ns)


async def test_the_default_tenant_gets_its_home_pvc_back(control, running):
    await ensure_tenant(control, keys.DEFAULT_TENANT)
    pvc = keys.tenant_pvc_name(keys.DEFAULT_TENANT)
    first = await running.until(
        lambda: _get(control, kinds.PERSISTENT_VOLUME_CLAIM, pvc, keys.SYSTEM_NAMESPACE))
    await control.delete(kinds.PERSISTENT_VOLUME_CLAIM, pvc, keys.SYSTEM_NAMESPACE)

    async def recreated() -> bool:
        found = await _get(control, kinds.PERSISTENT_VOLUME_CLAIM, pvc, keys.SYSTEM_NAMESPACE)
        return bool(found) and found["metadata"]["uid"] != first["metadata"]["uid"]

    await running.until(recreated, timeout=60)
    ns = await control.get(kinds.NAMESPACE, keys.SYSTEM_NAMESPACE)
    assert FINALIZER not in (ns["metadata"].get("finalizers") or [])


def _replica(control: Cluster, tmp_path: Path, leader: TenantProvisioner | None = None):
    """A server app that runs no provisioning controller; with `leader`, one whose process
    runs that controller (its handlers wait for it, as on the Lease holder)."""
    from cyclone.server import create_app
    from cyclone.server.provisioning import PROVISIONER

    async def lookup(_source: dict) -> Cluster:
        return control

    app = create_app(cluster=control, data_dir=tmp_path, admin_token=ADMIN_TOKEN,
                     clusters=lookup, provisioning=False)
    if leader is not None:
        app.state.cyclone.extras[PROVISIONER] = leader
    return app


def _worker(namespace: str, name: str = "worker", **metadata: object) -> dict:
    return {"metadata": {"name": name, **metadata}, "spec": {"type": "Cluster", "cluster": {
        "clusterName": _name("w"), "namespace": namespace,
        "credential": {"server": "https://k8s.example", "bearerToken": "tkn"}}}}


async def _taken_namespace(control: Cluster) -> str:
    """A namespace of the worker cluster labelled for another tenant."""
    namespace = _name("taken-")
    await control.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": namespace, "labels": {keys.LABEL_TENANT: _name("other")}}})
    return namespace


def _provisioning(answer: dict) -> dict | None:
    return (answer.get("status") or {}).get("provisioning")


async def _state(client, name: str = "worker") -> str | None:
    return (_provisioning((await client.get(f"/integrations/{name}")).json()) or {}).get("state")


async def test_a_refusal_by_the_leader_shows_on_a_replica_that_does_not_provision(
        control, running, tmp_path):
    tenant = await _tenant(control)
    taken = await _taken_namespace(control)
    app = _replica(control, tmp_path)
    async with app.router.lifespan_context(app), \
            make_client(app, ADMIN_TOKEN, tenant=tenant) as client:
        assert (await client.post("/integrations", json=_worker(taken))).status_code == 201
        opened = await client.put("/integrations/worker/opencluster")
        assert opened.status_code == 200, opened.text
        assert opened.json()["spec"]["cluster"]["isWorkerCluster"] is True

        async def refused() -> dict | None:
            got = (await client.get("/integrations/worker")).json()
            return got if (_provisioning(got) or {}).get("state") == "Refused" else None

        got = await running.until(refused)
        assert got["status"]["provisioning"] == {
            "state": "Refused", "reason": "Forbidden",
            "message": f"namespace {taken!r} belongs to another tenant"}
        assert got["spec"]["cluster"]["isWorkerCluster"] is True
        assert ANNOTATION_PROVISIONING not in got["metadata"]["annotations"]
        assert await _get(control, kinds.PERSISTENT_VOLUME_CLAIM,
                          keys.tenant_pvc_name(tenant), taken) is None

        await control.patch(kinds.SECRET, "worker", {"metadata": {"annotations": {
            ANNOTATION_PROVISIONING: '{"state": "Ready"}'}}}, keys.tenant_namespace(tenant))
        assert await running.until(refused)

        await control.patch(kinds.NAMESPACE, taken,
                            {"metadata": {"labels": {keys.LABEL_TENANT: None}}})
        assert await running.until(lambda: _ready(client))
        assert await _provisioned(control, tenant, taken)


async def _ready(client) -> bool:
    return await _state(client) == "Ready"


async def test_a_tenant_cannot_write_the_provisioning_outcome_through_the_api(
        control, running, tmp_path):
    tenant = await _tenant(control)
    taken = await _taken_namespace(control)
    fake = {ANNOTATION_PROVISIONING: '{"state": "Ready"}'}
    app = _replica(control, tmp_path)
    async with app.router.lifespan_context(app), \
            make_client(app, ADMIN_TOKEN, tenant=tenant) as client:
        created = await client.post("/integrations", json=_worker(taken, "forged",
                                                                  annotations=fake))
        assert created.status_code == 422, created.text
        assert ANNOTATION_PROVISIONING in created.json()["message"]
        worker = _worker(taken)
        assert (await client.post("/integrations", json=worker)).status_code == 201
        assert (await client.put("/integrations/worker/opencluster")).status_code == 200
        assert await running.until(lambda: _refused(client))

        forged = await client.put("/integrations/worker",
                                  json={**worker, "metadata": {"name": "worker",
                                                               "annotations": fake}})
        assert forged.status_code == 422, forged.text
        assert await _state(client) == "Refused"

        await running.stop()
        assert (await client.put("/integrations/worker/closecluster")).status_code == 200
        assert (await client.put("/integrations/worker/opencluster")).status_code == 200
        assert await _state(client) == "Pending"


async def _refused(client) -> bool:
    return await _state(client) == "Refused"


async def test_the_replica_running_the_controller_answers_its_refusal_at_once(
        control, running, tmp_path):
    tenant = await _tenant(control)
    taken = await _taken_namespace(control)
    app = _replica(control, tmp_path, leader=running.provisioner)
    async with app.router.lifespan_context(app), \
            make_client(app, ADMIN_TOKEN, tenant=tenant) as client:
        assert (await client.post("/integrations", json=_worker(taken))).status_code == 201
        refused = await client.put("/integrations/worker/opencluster")
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == f"namespace {taken!r} belongs to another tenant"
        got = (await client.get("/integrations/worker")).json()
        assert got["spec"]["cluster"]["isWorkerCluster"] is False
        assert "status" not in got

        free = _name("free-")
        assert (await client.post("/integrations",
                                  json=_worker(free, "free"))).status_code == 201
        opened = await client.put("/integrations/free/opencluster")
        assert opened.status_code == 200, opened.text
        assert await _state(client, "free") == "Ready"


class CountingCluster:
    """The cluster given to the controller, counting the reads and writes made through it
    (watches, which keep the informers current, are not counted)."""

    def __init__(self, inner: Cluster) -> None:
        self._inner = inner
        self.reads: list[str] = []
        self.writes: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    async def get(self, kind, name, namespace=None):
        self.reads.append(f"get {kind.kind} {namespace}/{name}")
        return await self._inner.get(kind, name, namespace)

    async def list(self, kind, namespace=None, **kwargs):
        self.reads.append(f"list {kind.kind} {namespace}")
        return await self._inner.list(kind, namespace, **kwargs)

    async def create(self, obj, *, namespace=None):
        self.writes.append(f"create {obj['kind']} {obj['metadata']['name']}")
        return await self._inner.create(obj, namespace=namespace)

    async def replace(self, obj):
        self.writes.append(f"replace {obj['kind']} {obj['metadata']['name']}")
        return await self._inner.replace(obj)

    async def patch(self, kind, name, patch, namespace=None, **kwargs):
        self.writes.append(f"patch {kind.kind} {name}")
        return await self._inner.patch(kind, name, patch, namespace, **kwargs)

    async def delete(self, kind, name, namespace=None, **kwargs):
        self.writes.append(f"delete {kind.kind} {name}")
        return await self._inner.delete(kind, name, namespace, **kwargs)


async def test_reconciling_a_provisioned_tenant_again_makes_no_write_and_no_control_read(
        control):
    counting = CountingCluster(control)
    runner = await Running(counting, ManualClock()).started()  # type: ignore[arg-type]
    try:
        tenant = await _tenant(control)
        namespace = f"{keys.tenant_namespace(tenant)}-work"
        await _integration(control, tenant, "local", {"isControlCluster": True,
                                                      "namespace": namespace})
        await running_until_ready(runner, control, tenant, namespace, "local")

        async def quiet_reconcile() -> bool:
            counting.reads.clear()
            counting.writes.clear()
            await runner.provisioner.controller.requeue_and_wait(tenant)
            return not counting.reads and not counting.writes

        try:
            await eventually(quiet_reconcile, timeout=10)
        except TimeoutError:
            pytest.fail(f"a no-op reconcile read {counting.reads} and wrote {counting.writes}")
        assert await _provisioned(control, tenant, namespace)
    finally:
        await runner.stop()


async def running_until_ready(runner: Running, control: Cluster, tenant: str, namespace: str,
                              integration: str) -> None:
    async def ready() -> bool:
        secret = await control.get(kinds.SECRET, integration, keys.tenant_namespace(tenant))
        outcome = (secret["metadata"].get("annotations") or {}).get(ANNOTATION_PROVISIONING)
        return (outcome == provisioning_outcome(None)
                and await _provisioned(control, tenant, namespace))

    await runner.until(ready)


async def test_an_opened_remote_cluster_is_read_again_only_when_its_resync_is_due(control):
    clock = ManualClock()
    counting, remote = CountingCluster(control), CountingCluster(control)

    async def lookup(_source: dict) -> Cluster:
        return remote  # type: ignore[return-value]

    provisioner = TenantProvisioner(
        counting, AuthorityTokens(TokenAuthority(counting, "admin-token")),  # type: ignore[arg-type]
        server_url="http://cyclone.test:7099", lookup=lookup, clock=clock, resync_seconds=60)
    task = asyncio.create_task(provisioner.run())
    try:
        await eventually(lambda: provisioner.running, timeout=30)
        tenant = await _tenant(control)
        namespace, ec = f"{tenant}-work", _name("w")
        await _integration(control, tenant, "worker", {"clusterName": ec, "namespace": namespace,
                                                       "credential": {"server": "https://w"}})
        assert await provisioner.wait_for_tenant(tenant)
        assert provisioner.failure(tenant, "worker") is None
        assert await _provisioned(control, tenant, namespace)

        async def quiet_reconcile() -> bool:
            for cluster in (counting, remote):
                cluster.reads.clear()
                cluster.writes.clear()
            await provisioner.controller.requeue_and_wait(tenant)
            return not (counting.reads or counting.writes or remote.reads or remote.writes)

        await eventually(quiet_reconcile, timeout=10)
        remote.reads.clear()
        clock.advance(60)
        await eventually(lambda: remote.reads, timeout=10)
        assert not remote.writes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
