"""Webhook authenticity: each provider's way of proving it knows the shared secret.

GitHub signs the body with HMAC-SHA256 in ``X-Hub-Signature-256: sha256=<hex>``; Bitbucket
Server does the same in ``X-Hub-Signature``; GitLab sends the secret itself in
``X-Gitlab-Token``. SVN hooks are expected to sign like GitHub. Comparisons are
constant-time; a request with no signature never verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from cyclone.engine.core.scm.events import Provider

GITHUB_SIGNATURE = "x-hub-signature-256"
BITBUCKET_SIGNATURE = "x-hub-signature"
GITLAB_TOKEN = "x-gitlab-token"


def hmac_sha256(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_header(provider: Provider) -> str:
    if provider == Provider.GITLAB:
        return GITLAB_TOKEN
    if provider == Provider.BITBUCKET:
        return BITBUCKET_SIGNATURE
    return GITHUB_SIGNATURE


def verify(provider: Provider, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """Whether the request proves knowledge of ``secret`` (headers with lower-case names)."""
    if not secret:
        return False
    given = (headers.get(signature_header(provider)) or "").strip()
    if not given:
        return False
    if provider == Provider.GITLAB:
        return hmac.compare_digest(given.encode(), secret.encode())
    return hmac.compare_digest(given.lower().encode(), hmac_sha256(secret, body).encode())


def signed_headers(provider: Provider, body: bytes, secret: str) -> dict[str, str]:
    """The header a provider would send for ``body`` (for clients and tests)."""
    if provider == Provider.GITLAB:
        return {"X-Gitlab-Token": secret}
    name = "X-Hub-Signature" if provider == Provider.BITBUCKET else "X-Hub-Signature-256"
    return {name: hmac_sha256(secret, body)}
