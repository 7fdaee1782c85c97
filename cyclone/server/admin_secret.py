"""The admin token kept in a Kubernetes Secret of the server's own namespace.

A Helm install creates no Secret holding the token (Helm would print or store it with the
release); the server reads the Secret named by `--admin-token-secret` and, when it is
missing, creates it with a random token. Replicas starting together may both try to
create it: the one that loses (AlreadyExists) reads the winner's, so all agree on one
token. A Secret that exists is used as it is, never rewritten.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, ApiError, Forbidden, NotFound
from cyclone.kube.protocol import Cluster

DEFAULT_KEY = "token"
TOKEN_BYTES = 32


class AdminSecretError(Exception):
    """The admin token Secret cannot be used; the message never holds the token."""


@dataclass(frozen=True)
class AdminSecretRef:
    namespace: str
    name: str
    key: str = DEFAULT_KEY

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} (key {self.key})"


def secret_ref(value: str, namespace: str) -> AdminSecretRef:
    """`NAME` or `NAME:KEY` of a Secret in the server's own `namespace`, never a tenant's
    (that tenant could read it)."""
    if keys.is_tenant_namespace(namespace):
        raise AdminSecretError(
            f"the admin token Secret would be in {namespace!r}, a tenant's namespace "
            f"(cyclone-*); run the server in a namespace of its own")
    name, _, key = value.partition(":")
    if not name or (":" in value and not key):
        raise AdminSecretError(f"--admin-token-secret {value!r} is not NAME or NAME:KEY")
    return AdminSecretRef(namespace, name, key or DEFAULT_KEY)


def _token_of(secret: dict, ref: AdminSecretRef) -> str:
    encoded = (secret.get("data") or {}).get(ref.key)
    if not encoded:
        raise AdminSecretError(f"the admin token Secret {ref} holds no such key")
    try:
        token = base64.b64decode(encoded, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        raise AdminSecretError(f"the admin token in Secret {ref} is not text") from None
    if not token:
        raise AdminSecretError(f"the admin token in Secret {ref} is empty")
    return token


def _new_secret(ref: AdminSecretRef, token: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": ref.name, "namespace": ref.namespace,
                     "labels": {"app.kubernetes.io/name": "cyclone",
                                "app.kubernetes.io/component": "admin-token"}},
        "type": "Opaque",
        "data": {ref.key: base64.b64encode(token.encode()).decode()},
    }


async def read_or_create_admin_token(cluster: Cluster, ref: AdminSecretRef) -> str:
    """The admin token of the Secret `ref`, created with a random token when missing."""
    try:
        try:
            return _token_of(await cluster.get(kinds.SECRET, ref.name, ref.namespace), ref)
        except NotFound:
            pass
        try:
            created = await cluster.create(
                _new_secret(ref, secrets.token_urlsafe(TOKEN_BYTES)), namespace=ref.namespace)
        except AlreadyExists:
            created = await cluster.get(kinds.SECRET, ref.name, ref.namespace)
        return _token_of(created, ref)
    except Forbidden as exc:
        raise AdminSecretError(
            f"may not read or create the admin token Secret {ref}: {exc}") from None
    except NotFound as exc:
        raise AdminSecretError(f"cannot create the admin token Secret {ref}: {exc}") from None
    except ApiError as exc:
        raise AdminSecretError(f"cannot read the admin token Secret {ref}: {exc}") from None
