"""A tenant token reaches nothing of another tenant, whichever route it tries."""

from __future__ import annotations

from .helpers import create_tenant, make_client, tenant_token

P = "/projects/demo"
W = f"{P}/workflows/ci"
READS = [
    "/tenants/devops", "/tenants/devops/tokens", "/integrations", "/integrations/github",
    "/projects", P, f"{P}/stats", f"{P}/stages", f"{P}/stages/build", f"{P}/resources",
    f"{P}/workflows", W, f"{W}/stats", f"{W}/workflowruns", f"{W}/workflowruns/r1",
    f"{W}/workflowtriggers", "/templates/private", "/storage/usages",
]
WRITES = [
    ("put", f"{W}/workflowruns/r1/stop"), ("put", f"{W}/workflowruns/r1/pause"),
    ("post", f"{W}/workflowruns/r1/retry"), ("delete", f"{W}/workflowruns/r1"),
    ("delete", f"{P}/stages/build"), ("delete", P), ("delete", "/templates/private"),
    ("delete", "/integrations/github"), ("put", "/integrations/github/opencluster"),
    ("delete", "/tenants/devops/tokens/whatever"),
]
STAGE = {"metadata": {"name": "build"}, "spec": {"pod": {
    "spec": {"containers": [{"image": "busybox"}]}}}}


async def _populate(devops) -> None:
    for path, body in (
        ("/integrations", {"metadata": {"name": "github"}, "spec": {
            "type": "SCM", "scm": {"type": "GitHub", "token": "t"}}}),
        ("/projects", {"metadata": {"name": "demo"}}),
        (f"{P}/stages", STAGE),
        ("/templates", {**STAGE, "metadata": {"name": "private"}}),
        (f"{P}/workflows", {"metadata": {"name": "ci"}, "spec": {"stages": [
            {"name": "build"}]}}),
        (f"{W}/workflowruns", {"metadata": {"name": "r1"}}),
    ):
        response = await devops.post(path, json=body)
        assert response.status_code == 201, (path, response.text)
    await devops.post("/storage/usages", json={"total": 10, "used": 1, "items": {}})


async def test_other_tenant_reaches_nothing(app, admin, devops):
    await _populate(devops)
    await create_tenant(admin, "qa")
    token = await tenant_token(admin, "qa")
    async with make_client(app, token, tenant="devops") as qa_as_devops:
        for path in READS:
            response = await qa_as_devops.get(path)
            assert response.status_code == 404, (path, response.status_code)
        for method, path in WRITES:
            response = await qa_as_devops.request(method.upper(), path)
            assert response.status_code in (403, 404), (method, path, response.status_code)
    async with make_client(app, token) as qa:
        for path in ("/integrations", "/projects"):
            assert (await qa.get(path)).json()["items"] == []
        templates = (await qa.get("/templates")).json()["items"]
        assert "private" not in {t["metadata"]["name"] for t in templates}
        assert (await qa.get("/templates/private")).status_code == 404
        assert (await qa.get("/storage/usages")).status_code == 404
    for path in READS:
        assert (await devops.get(path)).status_code == 200, path
