"""Stopping and starting the PVC watchdog of an opened remote cluster, as the provisioning
controller applies it on its own (no request waits for it, and no resync is due: the clock
stands still): a stop removes the watchdog pod and its token Secret and revokes the token;
a start brings the pod back with a token issued anew. On the embedded cluster and a real
API server."""

from __future__ import annotations

import base64

from support.clusters import eventually

from cyclone.api import keys
from cyclone.kube import errors, kinds
from cyclone.server.auth import TokenAuthority
from cyclone.server.watchdog import (
    ANNOTATION_WATCHER,
    WATCHDOG_TOKEN_SECRET,
    WATCHER_STOPPED,
    watchdog_pod_name,
)

from . import test_provisioning as provisioning
from .test_provisioning import _get, _integration, _name, _provisioned, _tenant

control = provisioning.control
running = provisioning.running

TOKEN_ID = "pvc-watcher-worker"


async def _token(control, namespace: str) -> str | None:
    secret = await _get(control, kinds.SECRET, WATCHDOG_TOKEN_SECRET, namespace)
    return base64.b64decode(secret["data"]["token"]).decode() if secret else None


async def _choose(control, tenant: str, value: str | None) -> None:
    """What `PUT /integrations/worker/pvcwatcher` writes, without waiting for a reconcile."""
    await control.patch(kinds.SECRET, "worker", {"metadata": {"annotations": {
        ANNOTATION_WATCHER: value}}}, keys.tenant_namespace(tenant))


async def test_a_background_reconcile_stops_the_watchdog_and_revokes_its_token(
        control, running):
    tenant = await _tenant(control)
    namespace = f"{tenant}-work"
    await _integration(control, tenant, "worker", {
        "clusterName": _name("w"), "namespace": namespace,
        "credential": {"server": "https://w"}})
    await running.until(lambda: _provisioned(control, tenant, namespace))
    assert await running.provisioner.wait_for_tenant(tenant)
    authority = TokenAuthority(control, "admin-token")
    first = await _token(control, namespace)
    assert first and (await authority.authenticate(first)).tenant == tenant

    await _choose(control, tenant, WATCHER_STOPPED)

    async def stopped() -> bool:
        return not any([await _get(control, kinds.POD, watchdog_pod_name(tenant), namespace),
                        await _token(control, namespace),
                        [t for t in await authority.list_tokens(tenant) if t["id"] == TOKEN_ID]])

    await eventually(stopped, timeout=10)
    try:
        await authority.authenticate(first)
        raise AssertionError("the stopped watchdog's token still authenticates")
    except errors.Unauthorized:
        pass

    await _choose(control, tenant, None)
    await eventually(lambda: _provisioned(control, tenant, namespace), timeout=10)
    second = await _token(control, namespace)
    assert second and second != first
    assert (await authority.authenticate(second)).tenant == tenant
