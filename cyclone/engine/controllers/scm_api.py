"""The few SCM provider API calls the engine makes: commit statuses and repository hooks.

The API base comes from the SCM integration's ``server``: ``https://github.com`` (or no
server) means ``https://api.github.com``, any other GitHub server is GitHub Enterprise
(``{server}/api/v3``); GitLab is ``{server}/api/v4``. Every call returns an
`ApiOutcome` instead of raising, so a provider that is down never fails a run.

The server is the tenant's choice, so calls go through a guarded client
(`cyclone.engine.outbound`): a server on a local address is refused unless the tenant's
spec has `allowLocalAddresses`.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from cyclone.api import keys
from cyclone.engine.core.addresses import allows_local_addresses
from cyclone.engine.outbound import guarded_client, refused_by
from cyclone.kube import kinds
from cyclone.kube.errors import ApiError
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

INTEGRATION_DATA_KEY = "integration"
GITHUB_STATES = {"pending": "pending", "success": "success", "failure": "failure",
                 "error": "error"}
GITLAB_STATES = {"pending": "running", "success": "success", "failure": "failed",
                 "error": "canceled"}


@dataclass(frozen=True)
class ScmAccess:
    """An SCM integration's provider, server and token."""

    provider: str
    server: str | None
    token: str | None
    user: str | None = None
    webhook_secret: str | None = None
    register_webhook: bool = True
    allow_local: bool = False
    """Whether the server may be a local address (the tenant's `allowLocalAddresses`)."""


@dataclass(frozen=True)
class ApiOutcome:
    ok: bool
    message: str = ""
    data: dict | None = None


async def tenant_allows_local_addresses(cluster: Cluster, namespace: str) -> bool:
    """Whether the tenant of metadata namespace `namespace` may call local addresses."""
    try:
        found = await cluster.get(kinds.NAMESPACE, namespace)
    except ApiError:
        return False
    return allows_local_addresses(found, keys.ANNOTATION_TENANT_INFO)


async def read_scm_access(cluster: Cluster, namespace: str, integration: str) -> ScmAccess | None:
    """The SCM source of integration ``integration`` (a Secret in the tenant namespace)."""
    try:
        secret = await cluster.get(kinds.SECRET, integration, namespace)
    except ApiError:
        return None
    if keys.LABEL_INTEGRATION_TYPE not in ((secret.get("metadata") or {}).get("labels") or {}):
        return None
    raw = (secret.get("data") or {}).get(INTEGRATION_DATA_KEY) or ""
    try:
        spec = json.loads(base64.b64decode(raw) or b"{}")
    except ValueError:
        return None
    scm = spec.get("scm") if isinstance(spec, dict) else None
    if not isinstance(scm, dict) or not scm.get("type"):
        return None
    return ScmAccess(
        provider=scm["type"], server=scm.get("server"), token=scm.get("token"),
        user=scm.get("user"), webhook_secret=scm.get("webhookSecret"),
        register_webhook=scm.get("registerWebhook") is not False,
        allow_local=await tenant_allows_local_addresses(cluster, namespace),
    )


def github_api_base(server: str | None) -> str:
    if not server:
        return "https://api.github.com"
    base = server.rstrip("/")
    if base in ("https://github.com", "http://github.com", "https://api.github.com"):
        return "https://api.github.com"
    return base if base.endswith("/api/v3") else f"{base}/api/v3"


def gitlab_api_base(server: str | None) -> str:
    base = (server or "https://gitlab.com").rstrip("/")
    return base if base.endswith("/api/v4") else f"{base}/api/v4"


def _headers(access: ScmAccess) -> dict[str, str]:
    if access.provider == "GitLab":
        return {"PRIVATE-TOKEN": access.token or ""}
    return {"Authorization": f"token {access.token or ''}",
            "Accept": "application/vnd.github+json"}


async def _call(method: str, url: str, access: ScmAccess, body: dict | None,
                http_timeout: float) -> ApiOutcome:
    try:
        async with guarded_client(allow_local=access.allow_local,
                                  timeout=http_timeout) as client:
            response = await client.request(method, url, json=body, headers=_headers(access))
    except httpx.HTTPError as exc:
        refused = refused_by(exc)
        if refused is not None:
            return ApiOutcome(False, f"{method} {url}: refused: {refused}")
        return ApiOutcome(False, f"{method} {url}: {type(exc).__name__}: {exc}")
    if response.status_code >= 300:
        return ApiOutcome(False, f"{method} {url}: HTTP {response.status_code} "
                                 f"{response.text[:200]}")
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = {}
    return ApiOutcome(True, f"HTTP {response.status_code}",
                      data if isinstance(data, dict) else {})


async def post_commit_status(
    access: ScmAccess, repo: str, commit: str, state: str, *, context: str,
    target_url: str, description: str, http_timeout: float = 10.0,
) -> ApiOutcome:
    """Post ``state`` (pending|success|failure|error) for ``commit`` of ``repo``."""
    if access.provider == "GitHub":
        url = f"{github_api_base(access.server)}/repos/{repo}/statuses/{commit}"
        body = {"state": GITHUB_STATES[state], "context": context, "target_url": target_url,
                "description": description}
    elif access.provider == "GitLab":
        url = (f"{gitlab_api_base(access.server)}/projects/{quote(repo, safe='')}"
               f"/statuses/{commit}")
        body = {"state": GITLAB_STATES[state], "name": context, "target_url": target_url,
                "description": description}
    else:
        return ApiOutcome(False, f"commit statuses are not supported for {access.provider}")
    return await _call("POST", url, access, body, http_timeout)


GITHUB_HOOK_EVENTS = ["push", "create", "pull_request", "issue_comment"]


async def create_repo_hook(access: ScmAccess, repo: str, url: str, secret: str | None,
                           http_timeout: float = 10.0) -> ApiOutcome:
    """Register ``url`` as a webhook of ``repo``; ``data["id"]`` is the hook's id."""
    if access.provider == "GitHub":
        body = {"name": "web", "active": True, "events": GITHUB_HOOK_EVENTS,
                "config": {"url": url, "content_type": "json", "secret": secret or "",
                           "insecure_ssl": "0"}}
        return await _call("POST", f"{github_api_base(access.server)}/repos/{repo}/hooks",
                           access, body, http_timeout)
    if access.provider == "GitLab":
        body = {"url": url, "token": secret or "", "push_events": True,
                "tag_push_events": True, "merge_requests_events": True, "note_events": True,
                "enable_ssl_verification": True}
        return await _call(
            "POST", f"{gitlab_api_base(access.server)}/projects/{quote(repo, safe='')}/hooks",
            access, body, http_timeout)
    return ApiOutcome(False, f"webhook registration is not supported for {access.provider}")


async def delete_repo_hook(access: ScmAccess, repo: str, hook_id: str,
                           http_timeout: float = 10.0) -> ApiOutcome:
    if access.provider == "GitHub":
        url = f"{github_api_base(access.server)}/repos/{repo}/hooks/{hook_id}"
    elif access.provider == "GitLab":
        url = (f"{gitlab_api_base(access.server)}/projects/{quote(repo, safe='')}"
               f"/hooks/{hook_id}")
    else:
        return ApiOutcome(False, f"webhook removal is not supported for {access.provider}")
    outcome = await _call("DELETE", url, access, None, http_timeout)
    if not outcome.ok and "HTTP 404" in outcome.message:
        return ApiOutcome(True, "already gone")
    return outcome
