from __future__ import annotations

import httpx
import pytest

from cyclone.server.scmrepos import RESOLVER, SCM_CLIENT_FACTORY

GITHUB = {"metadata": {"name": "github"}, "spec": {"type": "SCM", "scm": {
    "type": "GitHub", "server": "https://github.com", "token": "ghp_x"}}}


@pytest.fixture
def scm_requests(app) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/user/repos":
            return httpx.Response(200, json=[{"full_name": "org/app", "html_url": "u1"},
                                             {"full_name": "org/lib", "html_url": "u2"}])
        if path == "/repos/org/app/branches":
            return httpx.Response(200, json=[{"name": "main"}, {"name": "dev"}])
        if path == "/repos/org/app/pulls":
            return httpx.Response(200, json=[{"number": 3, "title": "Fix",
                                              "head": {"ref": "fix"}, "base": {"ref": "main"}}])
        if path == "/repos/org/app/tags":
            return httpx.Response(401, json={"message": "Bad credentials"})
        return httpx.Response(404)

    app.state.cyclone.extras[SCM_CLIENT_FACTORY] = lambda: httpx.AsyncClient(
        transport=httpx.MockTransport(handler))
    app.state.cyclone.extras[RESOLVER] = public_resolver
    return seen


async def public_resolver(host: str, port: int) -> list[str]:
    return ["140.82.112.5"]


async def test_lists_repos_branches_and_pull_requests(devops, scm_requests):
    await devops.post("/integrations", json=GITHUB)
    repos = (await devops.get("/integrations/github/scmrepos",
                              params={"filter": "name=lib"})).json()
    assert [r["name"] for r in repos["items"]] == ["org/lib"]
    assert scm_requests[0].headers["Authorization"] == "Bearer ghp_x"
    assert scm_requests[0].url.host == "api.github.com"
    branches = (await devops.get("/integrations/github/scmrepos/org/app/branches")).json()
    assert [b["name"] for b in branches["items"]] == ["main", "dev"]
    pulls = (await devops.get("/integrations/github/scmrepos/org/app/pullrequests")).json()
    assert pulls["items"] == [{"id": 3, "title": "Fix", "sourceBranch": "fix",
                               "targetBranch": "main"}]


async def test_scm_refusal_is_502_and_unknown_repo_404(devops, scm_requests):
    await devops.post("/integrations", json=GITHUB)
    refused = await devops.get("/integrations/github/scmrepos/org/app/tags")
    assert refused.status_code == 502
    assert "credentials" in refused.json()["message"]
    missing = await devops.get("/integrations/github/scmrepos/org/none/branches")
    assert missing.status_code == 404


async def test_non_scm_integration_is_400(devops, scm_requests):
    await devops.post("/integrations", json={"metadata": {"name": "reg"}, "spec": {
        "type": "DockerRegistry", "dockerRegistry": {"server": "r"}}})
    assert (await devops.get("/integrations/reg/scmrepos")).status_code == 400
    assert scm_requests == []
