"""Repositories, branches, tags and pull requests of an SCM integration, from the SCM's API.

GitHub (api.github.com or `{server}/api/v3`), GitLab (`{server}/api/v4`) and Bitbucket
Server (`{server}/rest/api/1.0`) are asked with the integration's token (or user and
password). Answers use the list conventions; an SCM that fails answers 502.

The server is the tenant's choice, and the call is made from inside the cluster with the
tenant's credentials: a server on a local address (`cyclone.engine.outbound`)
answers 403 unless the tenant's spec has `allowLocalAddresses`, both when the name is
resolved before the call and for each connection (redirects included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Depends, Query

from cyclone.engine.core.addresses import ALLOW_HINT, LocalAddressRefused, literal_url_problem
from cyclone.engine.outbound import Resolver, check_host, guarded_client, refused_by
from cyclone.kube import errors
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.integration_records import read_integration_secret, spec_of_secret
from cyclone.server.listing import ListQuery, list_query, paginate
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import tenant_spec

router = APIRouter(tags=["integrations"])
PAGE_LIMIT = 5
HTTP_TIMEOUT_SECONDS = 10.0
SCM_CLIENT_FACTORY = "scm_client_factory"
"""`state.extras` key of a no-argument factory of the SCM HTTP client (tests)."""
RESOLVER = "address_resolver"
"""`state.extras` key of the resolver used to check SCM servers (default: the system's)."""


class BadGateway(errors.ApiError):
    code = 502
    reason = "BadGateway"


def _github_base(server: str) -> str:
    server = (server or "https://github.com").rstrip("/")
    if server in ("https://github.com", "http://github.com", "https://api.github.com"):
        return "https://api.github.com"
    return server + "/api/v3"


class ScmApi:
    """The four listings, for one SCM type."""

    def __init__(self, scm: dict, client: httpx.AsyncClient) -> None:
        self.scm = scm
        self.client = client
        self.type = scm.get("type") or "GitHub"
        server = str(scm.get("server") or "").rstrip("/")
        token = scm.get("token")
        self.headers: dict[str, str] = {"Accept": "application/json"}
        self.auth: tuple[str, str] | None = None
        if self.type == "GitHub":
            self.base = _github_base(server)
            if token:
                self.headers["Authorization"] = f"Bearer {token}"
        elif self.type == "GitLab":
            self.base = (server or "https://gitlab.com") + "/api/v4"
            if token:
                self.headers["PRIVATE-TOKEN"] = str(token)
        elif self.type == "Bitbucket":
            if not server:
                raise errors.BadRequest("a Bitbucket integration needs scm.server")
            self.base = server + "/rest/api/1.0"
            if token:
                self.headers["Authorization"] = f"Bearer {token}"
        else:
            raise errors.BadRequest(f"listing repositories is not supported for {self.type}")
        if not token and scm.get("user") and scm.get("password"):
            self.auth = (str(scm["user"]), str(scm["password"]))

    async def _fetch(self, url: str, path: str, query: dict) -> tuple[httpx.Response, Any]:
        """One GET of the SCM's API: the response and its JSON body."""
        try:
            response = await self.client.get(url, params=query, headers=self.headers,
                                             auth=self.auth)
        except httpx.HTTPError as exc:
            refused = refused_by(exc)
            if refused is not None:
                raise errors.Forbidden(f"{self.type} server refused: {refused}") from exc
            raise BadGateway(f"{self.type} at {self.base} is unreachable: {exc}") from exc
        if response.status_code in (401, 403):
            raise BadGateway(f"{self.type} refused the integration's credentials "
                             f"(HTTP {response.status_code})")
        if response.status_code == 404:
            raise errors.NotFound(f"{self.type} has no {path}")
        if not response.is_success:
            raise BadGateway(f"{self.type} answered HTTP {response.status_code}")
        try:
            return response, response.json()
        except ValueError as exc:
            raise BadGateway(f"{self.type} answered something that is not JSON") from exc

    async def _get_object(self, path: str, params: dict | None = None) -> dict:
        _, body = await self._fetch(self.base + path, path, dict(params or {}))
        if not isinstance(body, dict):
            raise BadGateway(f"{self.type} answered an unexpected shape")
        return body

    async def _get(self, path: str, params: dict | None = None) -> list[Any]:
        items: list[Any] = []
        url: str | None = self.base + path
        query = dict(params or {})
        for _ in range(PAGE_LIMIT):
            if url is None:
                break
            response, body = await self._fetch(url, path, query)
            if isinstance(body, dict) and "values" in body:
                items.extend(body.get("values") or [])
                url = None if body.get("isLastPage", True) else url
                query["start"] = body.get("nextPageStart", 0)
            elif isinstance(body, list):
                items.extend(body)
                next_link = response.links.get("next", {}).get("url")
                url, query = (next_link, {}) if next_link else (None, query)
            else:
                raise BadGateway(f"{self.type} answered an unexpected shape")
        return items

    def _repo_path(self, repo: str) -> str:
        if self.type == "GitLab":
            return "/projects/" + quote(repo, safe="")
        if self.type == "Bitbucket":
            project, _, slug = repo.partition("/")
            if not slug:
                raise errors.BadRequest("a Bitbucket repository is PROJECT/slug")
            return f"/projects/{quote(project)}/repos/{quote(slug)}"
        owner, _, name = repo.partition("/")
        if not name:
            raise errors.BadRequest("a GitHub repository is owner/name")
        return f"/repos/{quote(owner)}/{quote(name)}"

    async def repos(self) -> list[dict]:
        if self.type == "GitHub":
            found = await self._get("/user/repos", {"per_page": 100})
            return [{"name": r.get("full_name"), "url": r.get("html_url")} for r in found]
        if self.type == "GitLab":
            found = await self._get("/projects", {"membership": "true", "per_page": 100})
            return [{"name": r.get("path_with_namespace"), "url": r.get("web_url")}
                    for r in found]
        found = await self._get("/repos", {"limit": 100})
        return [{"name": f"{(r.get('project') or {}).get('key')}/{r.get('slug')}",
                 "url": None} for r in found]

    async def branches(self, repo: str) -> list[dict]:
        path = self._repo_path(repo) + ("/repository/branches" if self.type == "GitLab"
                                        else "/branches")
        found = await self._get(path, {"per_page": 100})
        return [{"name": b.get("name") or b.get("displayId")} for b in found]

    async def tags(self, repo: str) -> list[dict]:
        path = self._repo_path(repo) + ("/repository/tags" if self.type == "GitLab"
                                        else "/tags")
        found = await self._get(path, {"per_page": 100})
        return [{"name": t.get("name") or t.get("displayId")} for t in found]

    async def pull_requests(self, repo: str) -> list[dict]:
        if self.type == "GitLab":
            found = await self._get(self._repo_path(repo) + "/merge_requests",
                                    {"state": "opened", "per_page": 100})
            return [{"id": m.get("iid"), "title": m.get("title"),
                     "sourceBranch": m.get("source_branch"),
                     "targetBranch": m.get("target_branch")} for m in found]
        if self.type == "Bitbucket":
            found = await self._get(self._repo_path(repo) + "/pull-requests", {"limit": 100})
            return [{"id": p.get("id"), "title": p.get("title"),
                     "sourceBranch": (p.get("fromRef") or {}).get("displayId"),
                     "targetBranch": (p.get("toRef") or {}).get("displayId")} for p in found]
        found = await self._get(self._repo_path(repo) + "/pulls",
                                {"state": "open", "per_page": 100})
        return [{"id": p.get("number"), "title": p.get("title"),
                 "sourceBranch": (p.get("head") or {}).get("ref"),
                 "targetBranch": (p.get("base") or {}).get("ref")} for p in found]

    async def files(self, repo: str, ref: str | None) -> list[str]:
        """The paths of the files of the repository at `ref` (its default branch when
        None)."""
        if self.type == "GitLab":
            params: dict[str, Any] = {"recursive": "true", "per_page": 100}
            if ref:
                params["ref"] = ref
            found = await self._get(self._repo_path(repo) + "/repository/tree", params)
            return [f.get("path") for f in found
                    if isinstance(f, dict) and f.get("type") == "blob" and f.get("path")]
        if self.type == "Bitbucket":
            found = await self._get(self._repo_path(repo) + "/files",
                                    {"limit": 1000, **({"at": ref} if ref else {})})
            return [f for f in found if isinstance(f, str)]
        base = self._repo_path(repo)
        if not ref:
            ref = str((await self._get_object(base)).get("default_branch") or "HEAD")
        tree = await self._get_object(f"{base}/git/trees/{quote(ref, safe='')}",
                                      {"recursive": "1"})
        return [f.get("path") for f in tree.get("tree") or []
                if isinstance(f, dict) and f.get("type") == "blob" and f.get("path")]

    async def dockerfiles(self, repo: str, ref: str | None = None) -> list[dict]:
        return [{"path": p} for p in sorted(await self.files(repo, ref)) if is_dockerfile(p)]


def is_dockerfile(path: str) -> bool:
    """`Dockerfile`, `Dockerfile.<variant>` or `<variant>.Dockerfile`, in any folder."""
    name = path.rsplit("/", 1)[-1].lower()
    return name == "dockerfile" or name.startswith("dockerfile.") or name.endswith(
        ".dockerfile")


def _client(state: ServerState, allow_local: bool) -> httpx.AsyncClient:
    factory: Callable[[], httpx.AsyncClient] | None = state.extras.get(SCM_CLIENT_FACTORY)
    if factory is not None:
        return factory()
    return guarded_client(allow_local=allow_local, resolver=state.extras.get(RESOLVER),
                          timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=True)


async def tenant_allows_local(state: ServerState, tenant: str) -> bool:
    """The tenant's `allowLocalAddresses` (only an admin sets it)."""
    return (await tenant_spec(state.cluster, tenant)).allow_local_addresses


def check_literal_urls(spec: dict, allow_local: bool) -> None:
    """Refuse (422) an integration whose SCM server is a local address as written."""
    if allow_local:
        return
    server = ((spec.get("scm") or {}) if isinstance(spec, dict) else {}).get("server")
    problem = literal_url_problem(server)
    if problem:
        raise errors.Invalid(f"spec.scm.server: {problem}; {ALLOW_HINT}")


async def check_reachable(state: ServerState, url: str, allow_local: bool) -> None:
    """Refuse (403) a call to `url` when its host resolves to a local address."""
    if allow_local:
        return
    parts = urlsplit(url)
    if not parts.hostname:
        raise errors.BadRequest(f"{url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise errors.BadRequest(f"{url!r}: {exc}") from exc
    resolver: Resolver | None = state.extras.get(RESOLVER)
    try:
        await check_host(parts.hostname, port, resolver=resolver)
    except LocalAddressRefused as exc:
        raise errors.Forbidden(f"SCM server refused: {exc}") from exc
    except OSError as exc:
        raise BadGateway(f"{parts.hostname} does not resolve: {exc}") from exc


async def _scm_of(state: ServerState, tenant: str, integration: str) -> dict:
    spec = spec_of_secret(await read_integration_secret(state.cluster, tenant, integration))
    if spec.get("type") != "SCM":
        raise errors.BadRequest(f"integration {integration!r} is not of type SCM")
    return spec.get("scm") or {}


async def _listing(state: ServerState, tenant: str, integration: str, what: str,
                   repo: str | None, query: ListQuery, *extra: Any) -> dict:
    scm = await _scm_of(state, tenant, integration)
    allow_local = await tenant_allows_local(state, tenant)
    async with _client(state, allow_local) as client:
        api = ScmApi(scm, client)
        await check_reachable(state, api.base, allow_local)
        items = await (api.repos() if what == "repos" else getattr(api, what)(repo, *extra))
    return paginate(items, query)


@router.get("/integrations/{integration}/scmrepos", summary="Repositories of an SCM")
async def list_repos(integration: str, query: ListQuery = Depends(list_query),
                     tenant: str = Depends(require_tenant),
                     state: ServerState = Depends(server_state)) -> dict:
    return await _listing(state, tenant, integration, "repos", None, query)


@router.get("/integrations/{integration}/scmrepos/{repo:path}/branches",
            summary="Branches of a repository")
async def list_branches(integration: str, repo: str, query: ListQuery = Depends(list_query),
                        tenant: str = Depends(require_tenant),
                        state: ServerState = Depends(server_state)) -> dict:
    return await _listing(state, tenant, integration, "branches", repo, query)


@router.get("/integrations/{integration}/scmrepos/{repo:path}/tags",
            summary="Tags of a repository")
async def list_tags(integration: str, repo: str, query: ListQuery = Depends(list_query),
                    tenant: str = Depends(require_tenant),
                    state: ServerState = Depends(server_state)) -> dict:
    return await _listing(state, tenant, integration, "tags", repo, query)


@router.get("/integrations/{integration}/scmrepos/{repo:path}/pullrequests",
            summary="Open pull requests of a repository")
async def list_pull_requests(integration: str, repo: str,
                             query: ListQuery = Depends(list_query),
                             tenant: str = Depends(require_tenant),
                             state: ServerState = Depends(server_state)) -> dict:
    return await _listing(state, tenant, integration, "pull_requests", repo, query)


@router.get("/integrations/{integration}/scmrepos/{repo:path}/dockerfiles",
            summary="Dockerfiles of a repository")
async def list_dockerfiles(integration: str, repo: str,
                           query: ListQuery = Depends(list_query),
                           ref: str | None = Query(None, max_length=255, description=(
                               "Branch, tag or commit (default: the default branch)")),
                           tenant: str = Depends(require_tenant),
                           state: ServerState = Depends(server_state)) -> dict:
    """The paths of the repository's Dockerfiles (`Dockerfile`, `Dockerfile.*`,
    `*.Dockerfile`), from the SCM's tree API, as `{path}` items sorted by path."""
    return await _listing(state, tenant, integration, "dockerfiles", repo,
                          query if query.sort else ListQuery(query.start, query.limit,
                                                             query.filter, "path", True),
                          *([ref] if ref else []))
