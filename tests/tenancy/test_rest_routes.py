"""Tenant `b`'s token against every REST route of tenant `a`, on a running Cyclone: naming
`a` in `X-Tenant`, or asking under its own tenant for `a`'s names, it reads nothing, changes
nothing and learns nothing (the answers are those of a name that does not exist)."""

from __future__ import annotations

import gzip
import io
import tarfile

import httpx

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run

P = "/projects/demo"
W = f"{P}/workflows/ci"


def _artifact() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"a's artifact"
        info = tarfile.TarInfo("report.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue())


async def _populate(a) -> str:
    """Every kind of object tenant `a` can own; returns the name of its finished run."""
    expect(await a.http.post("/integrations", json={"metadata": {"name": "gh"}, "spec": {
        "type": "SCM", "scm": {"type": "GitHub", "server": "https://github.com",
                               "token": "a-token-that-b-must-never-see"}}}), 201)
    await apply_flow(a.http, "demo", "ci", [shell_stage("build", "echo built by a")])
    expect(await a.http.post(f"{P}/resources", json={"metadata": {"name": "src"}, "spec": {
        "type": "Git", "parameters": [{"name": "SCM_URL", "value": "https://example.com/r"}]}}),
        201)
    expect(await a.http.post("/templates", json={**shell_stage("private", "true")}), 201)
    expect(await a.http.post(f"{W}/workflowtriggers", json={
        "metadata": {"name": "nightly"},
        "spec": {"type": "Cron", "cron": {"schedule": "0 2 * * *"}, "disabled": True}}), 201)
    run = await start_run(a.http, "demo", "ci", {"metadata": {"name": "r1"}})
    done = await wait_run(a.http, "demo", "ci", run["metadata"]["name"])
    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
    return run["metadata"]["name"]


def _routes(run: str) -> tuple[list[str], list[tuple[str, str, dict | None]]]:
    r = f"{W}/workflowruns/{run}"
    reads = [
        "/integrations/gh", "/integrations/cluster", "/integrations/gh/scmrepos",
        P, f"{P}/stats", f"{P}/stages/build", f"{P}/resources/src", f"{W}", f"{W}/stats",
        f"{W}/workflowtriggers/nightly", r, f"{r}/logs?stage=build", f"{r}/logstream?stage=build",
        f"{r}/artifacts", f"{r}/artifacts/a.tar.gz", "/templates/private", f"{r}/events",
        f"{r}/logs?stage=build&timestamps=true&sinceSeconds=3600",
        f"{r}/logstream?stage=build&sinceTime=2000-01-01T00:00:00Z",
    ]
    writes = [
        ("PUT", "/integrations/gh", {"metadata": {"name": "gh"}, "spec": {
            "type": "SCM", "scm": {"type": "GitHub", "server": "https://evil.example"}}}),
        ("DELETE", "/integrations/gh", None),
        ("PUT", "/integrations/cluster/closecluster", None),
        ("PUT", f"{P}/stages/build", shell_stage("build", "echo written by b")),
        ("DELETE", f"{P}/stages/build", None),
        ("DELETE", f"{P}/resources/src", None),
        ("DELETE", f"{W}/workflowtriggers/nightly", None),
        ("POST", f"{W}/workflowruns", {}),
        ("PUT", f"{P}/stages/build?dryRun=All", shell_stage("build", "echo by b")),
        ("POST", f"{W}/workflowruns?dryRun=All", {}),
        ("PUT", f"{r}/stop", None), ("PUT", f"{r}/stop?force=true", None),
        ("PUT", f"{r}/pause", None), ("POST", f"{r}/retry", None),
        ("POST", f"{r}/rerun", None), ("DELETE", r, None),
        ("DELETE", f"{r}/artifacts/a.tar.gz", None),
        ("DELETE", "/templates/private", None), ("DELETE", W, None), ("DELETE", P, None),
    ]
    return reads, writes


async def test_b_token_reaches_nothing_of_a_on_any_route(stack):
    a, b = stack.a, stack.b
    run = await _populate(a)
    response = await a.http.post(f"{W}/workflowruns/{run}/artifacts?name=a.tar.gz",
                                 content=_artifact())
    expect(response, 201)
    reads, writes = _routes(run)
    before = {path: (await a.http.get(path)).content for path in reads
              if "logstream" not in path and "scmrepos" not in path}

    for headers in ({"X-Tenant": a.name}, {}):
        own = not headers  # b's own tenant has an integration named "cluster" too
        for path in reads:
            if own and path.startswith("/integrations/cluster"):
                continue
            response = await b.http.get(path, headers=headers)
            assert response.status_code in (403, 404), (headers, path, response.status_code)
            assert b"a-token-that-b-must-never-see" not in response.content
            assert b"built by a" not in response.content
        for method, path, body in writes:
            if own and path.startswith("/integrations/cluster"):
                continue
            response = await b.http.request(method, path, json=body, headers=headers)
            assert response.status_code in (403, 404), (headers, method, path,
                                                        response.status_code, response.text)
    for path in ("/tenants", f"/tenants/{a.name}", f"/tenants/{a.name}/tokens"):
        assert (await b.http.get(path)).status_code in (403, 404), path
    response = await b.http.post(f"/tenants/{a.name}/tokens", json={"description": "x"})
    assert response.status_code in (403, 404)
    response = await b.http.put(f"/tenants/{b.name}", json={
        "metadata": {"name": b.name}, "spec": {"allowedPodFeatures": ["hostPath"]}})
    assert response.status_code in (403, 404), "a tenant must not widen its own settings"

    after = {path: (await a.http.get(path)).content for path in before}
    assert after == before, "tenant a's objects changed under tenant b's requests"
    runs = expect(await a.http.get(runs_path("demo", "ci")), 200)["items"]
    assert [r["metadata"]["name"] for r in runs] == [run]
    for other in ("/projects", "/integrations"):
        names = {i["metadata"]["name"] for i in expect(await b.http.get(other), 200)["items"]}
        assert not names & {"demo", "gh"}, (other, names)


async def test_bad_log_options_and_metrics_are_refused_without_a_500(stack):
    """Out-of-range or malformed log options are a 4xx before anything is read, with or
    without a token; `/metrics` (every tenant's project names) answers b's token 403."""
    a, b = stack.a, stack.b
    r = f"{W}/workflowruns/nothing"
    bad = ("sinceSeconds=100000000000", "sinceSeconds=0", "sinceSeconds=%C2%B2",
           "sinceTime=yesterday", "sinceSeconds=5&sinceTime=2000-01-01T00:00:00Z")
    async with httpx.AsyncClient(base_url=str(b.http.base_url), timeout=30) as anonymous:
        for query in bad:
            for route in ("logs", "logstream", "logstream/sse"):
                for client, headers in ((b.http, {"X-Tenant": a.name}), (b.http, {}),
                                        (anonymous, {"X-Tenant": a.name})):
                    response = await client.get(f"{r}/{route}?stage=build&{query}",
                                                headers=headers)
                    assert 400 <= response.status_code < 500, (route, query,
                                                               response.status_code)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as root:
        assert (await root.get("/metrics")).status_code == 401
        token = b.http.headers["Authorization"]
        refused = await root.get("/metrics", headers={"Authorization": token})
        assert refused.status_code == 403 and b"cyclone_" not in refused.content
