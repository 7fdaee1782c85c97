"""Bearer-token authentication: one admin token, and tenant tokens that reach one tenant.

Tenant tokens look like `cyt.{tenant}.{id}.{secret}`. Only a SHA-256 of each token is kept,
in the Secret `cyclone-tenant-tokens` of the tenant's metadata namespace, so deleting the
tenant revokes its tokens and the server keeps no state of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi import Depends, Header, Request

from cyclone.api import keys
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.state import ServerState

TOKEN_SECRET_NAME = "cyclone-tenant-tokens"
TOKEN_PREFIX = "cyt"
_TENANT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TOKEN_ID = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin (every tenant) or the holder of one tenant's token."""

    admin: bool
    tenant: str | None = None
    token_id: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    id: str
    tenant: str
    token: str
    description: str
    created_at: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decode_entry(value: str) -> dict:
    try:
        return json.loads(base64.b64decode(value))
    except (ValueError, TypeError):
        return {}


class TokenAuthority:
    """Checks bearer tokens, and issues and revokes tenant tokens."""

    def __init__(self, cluster: Cluster, admin_token: str) -> None:
        if not admin_token:
            raise ValueError("the admin token must not be empty")
        self._cluster = cluster
        self._admin_digest = _digest(admin_token)

    async def authenticate(self, token: str) -> Principal:
        if hmac.compare_digest(_digest(token), self._admin_digest):
            return Principal(admin=True)
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != TOKEN_PREFIX:
            raise errors.Unauthorized("invalid token")
        _, tenant, token_id, _ = parts
        if not _TENANT_NAME.match(tenant) or not _TOKEN_ID.match(token_id):
            raise errors.Unauthorized("invalid token")
        entries = await self._entries(tenant)
        entry = entries.get(token_id)
        if not entry or not hmac.compare_digest(entry.get("sha256", ""), _digest(token)):
            raise errors.Unauthorized("invalid token")
        return Principal(admin=False, tenant=tenant, token_id=token_id)

    async def issue(self, tenant: str, description: str = "", token_id: str | None = None
                    ) -> IssuedToken:
        """Issue a token for `tenant`; an existing `token_id` is replaced."""
        token_id = token_id or secrets.token_hex(4)
        if not _TOKEN_ID.match(token_id) or len(token_id) > 63:
            raise errors.Invalid(f"invalid token id {token_id!r}")
        token = f"{TOKEN_PREFIX}.{tenant}.{token_id}.{secrets.token_urlsafe(24)}"
        entry = {"sha256": _digest(token), "description": description, "createdAt": _now()}
        encoded = base64.b64encode(json.dumps(entry).encode()).decode()
        namespace = keys.tenant_namespace(tenant)
        try:
            await self._cluster.patch(
                kinds.SECRET, TOKEN_SECRET_NAME, {"data": {token_id: encoded}}, namespace
            )
        except errors.NotFound:
            await self._cluster.create(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": TOKEN_SECRET_NAME, "namespace": namespace,
                                 "labels": {keys.LABEL_TENANT: tenant}},
                    "type": "Opaque",
                    "data": {token_id: encoded},
                },
                namespace=namespace,
            )
        return IssuedToken(token_id, tenant, token, description, entry["createdAt"])

    async def list_tokens(self, tenant: str) -> list[dict]:
        """The tokens of a tenant, without anything that would let one use them."""
        return [
            {"id": token_id, "tenant": tenant, "description": entry.get("description", ""),
             "createdAt": entry.get("createdAt")}
            for token_id, entry in sorted((await self._entries(tenant)).items())
        ]

    async def revoke(self, tenant: str, token_id: str) -> None:
        entries = await self._entries(tenant)
        if token_id not in entries:
            raise errors.NotFound(f"token {token_id!r} not found")
        await self._cluster.patch(
            kinds.SECRET, TOKEN_SECRET_NAME, {"data": {token_id: None}},
            keys.tenant_namespace(tenant),
        )

    async def _entries(self, tenant: str) -> dict[str, dict]:
        try:
            secret = await self._cluster.get(
                kinds.SECRET, TOKEN_SECRET_NAME, keys.tenant_namespace(tenant)
            )
        except errors.NotFound:
            return {}
        return {k: _decode_entry(v) for k, v in (secret.get("data") or {}).items()}


def server_state(request: Request) -> ServerState:
    """The state shared by every router (cluster, data dir, auth)."""
    return request.app.state.cyclone


async def current_principal(
    request: Request,
    authorization: str | None = Header(default=None, description="Bearer token"),
) -> Principal:
    """The caller, from `Authorization: Bearer …`; 401 without a valid token."""
    if not authorization:
        raise errors.Unauthorized("missing Authorization: Bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("expected Authorization: Bearer <token>")
    return await server_state(request).auth.authenticate(token.strip())


async def require_admin(principal: Principal = Depends(current_principal)) -> Principal:
    """Admin routes: a tenant token answers 403."""
    if not principal.admin:
        raise errors.Forbidden("this operation needs the admin token")
    return principal


def tenant_allowed(principal: Principal, tenant: str) -> bool:
    return principal.admin or principal.tenant == tenant


async def require_tenant(
    principal: Principal = Depends(current_principal),
    x_tenant: str | None = Header(default=None, description="Tenant (default: system)"),
) -> str:
    """The tenant a request acts on, checked against the caller's token.

    A tenant token implies its tenant; naming another tenant in `X-Tenant` answers 404, as
    if the tenant did not exist.
    """
    if principal.admin:
        tenant = (x_tenant or keys.DEFAULT_TENANT).strip()
    else:
        tenant = (x_tenant or principal.tenant or "").strip()
        if tenant != principal.tenant:
            raise errors.NotFound(f"tenant {tenant!r} not found")
    if not _TENANT_NAME.match(tenant) or len(tenant) > 50:
        raise errors.BadRequest(f"invalid tenant name {tenant!r} in X-Tenant")
    return tenant


ADMIN_TOKEN_FILE = "admin-token"


def load_or_create_admin_token(data_dir: Path) -> str:
    """The admin token kept in `<data-dir>/admin-token` (mode 0600), created when missing."""
    path = Path(data_dir) / ADMIN_TOKEN_FILE
    if path.exists():
        if path.stat().st_mode & 0o777 != 0o600:
            os.chmod(path, 0o600)
        token = path.read_text().strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token
