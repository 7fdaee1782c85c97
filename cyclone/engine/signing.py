"""The engine key: the one secret behind every token and signature the engine and the
server hand out or check (`cyclone.engine.core.tokens`, `cyclone.engine.core.delegation`).

It is a random value kept in the Secret ``cyclone-engine-key`` of the engine's system
namespace in the control cluster (``cyclone`` unless configured otherwise: never a tenant's
namespace), created with its namespace on first use. A key older versions kept in
``cyclone-system`` is deleted once the new one exists, never reused. Each process reads
the key once: to rotate it, delete the Secret and restart the engine and the servers.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import secrets
import weakref

from cyclone.api import keys
from cyclone.engine.core.tokens import Purpose, purpose_key
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, ApiError, Forbidden, NotFound
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

ENGINE_KEY_SECRET = "cyclone-engine-key"
DEFAULT_KEY_NAMESPACE = keys.ENGINE_NAMESPACE
ENGINE_KEY_FIELD = "key"

_engine_keys: weakref.WeakKeyDictionary[Cluster, dict[str, bytes]] = (
    weakref.WeakKeyDictionary())


async def engine_key(cluster: Cluster, namespace: str) -> bytes:
    """The engine's HMAC key in `namespace`, created (with the namespace) on first use and
    then kept for the life of `cluster`; the legacy key is retired the first time."""
    known = _engine_keys.setdefault(cluster, {})
    if namespace not in known:
        key = await _read_or_create_key(cluster, namespace)
        if namespace != keys.LEGACY_ENGINE_KEY_NAMESPACE:
            await retire_legacy_key(cluster)
        known[namespace] = key
    return known[namespace]


async def prepare_engine_key(cluster: Cluster, namespace: str) -> None:
    """Make sure the engine key exists where it belongs and the legacy one is gone, at the
    start of a process rather than at the first token; a failure is only logged, as the
    first token tries again."""
    try:
        await engine_key(cluster, namespace)
    except ApiError as exc:
        log.warning("cannot prepare the engine key in namespace %s: %s", namespace, exc)


async def token_key(cluster: Cluster, namespace: str, purpose: Purpose) -> bytes:
    """The key of one kind of token, derived from the engine key in `namespace`."""
    return purpose_key(await engine_key(cluster, namespace), purpose)


async def _read_or_create_key(cluster: Cluster, namespace: str) -> bytes:
    try:
        secret = await cluster.get(kinds.SECRET, ENGINE_KEY_SECRET, namespace)
    except NotFound:
        value = base64.b64encode(secrets.token_bytes(32)).decode()
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": ENGINE_KEY_SECRET, "namespace": namespace,
                         "labels": {keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE}},
            "type": "Opaque",
            "data": {ENGINE_KEY_FIELD: value},
        }
        try:
            secret = await _create_in(cluster, manifest, namespace)
        except AlreadyExists:
            secret = await cluster.get(kinds.SECRET, ENGINE_KEY_SECRET, namespace)
    return base64.b64decode(secret["data"][ENGINE_KEY_FIELD])


async def _create_in(cluster: Cluster, manifest: dict, namespace: str) -> dict:
    """Create `manifest`, and its namespace first when that is missing."""
    try:
        return await cluster.create(manifest, namespace=namespace)
    except NotFound:
        with contextlib.suppress(AlreadyExists):
            await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": namespace}})
        return await cluster.create(manifest, namespace=namespace)


async def retire_legacy_key(cluster: Cluster) -> None:
    """Delete the key Secret older versions kept in the `system` tenant's namespace, where
    that tenant could read it: tokens signed with it must stop working."""
    try:
        await cluster.delete(kinds.SECRET, ENGINE_KEY_SECRET, keys.LEGACY_ENGINE_KEY_NAMESPACE)
    except NotFound:
        return
    except Forbidden:
        log.info("may not delete the old engine key %s/%s; the server does",
                 keys.LEGACY_ENGINE_KEY_NAMESPACE, ENGINE_KEY_SECRET)
        return
    except ApiError as exc:
        log.warning("cannot delete the old engine key %s/%s: %s",
                    keys.LEGACY_ENGINE_KEY_NAMESPACE, ENGINE_KEY_SECRET, exc)
        return
    log.info("deleted the old engine key %s/%s", keys.LEGACY_ENGINE_KEY_NAMESPACE,
             ENGINE_KEY_SECRET)
