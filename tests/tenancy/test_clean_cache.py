"""`POST /projects/{p}/cleancachetasks` and `cyclone project clean-cache` against a live
server on both clusters: a tenant empties its own project's acceleration caches, and never
another tenant's."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from cyclone.cli.main import app
from cyclone.engine.core.acceleration import LABEL_ACCELERATION

from .conftest import BACKENDS
from .flows import apply_flow, expect, shell_stage, start_run, wait_run

pytestmark = pytest.mark.parametrize("stack", BACKENDS, indirect=True)

PROBE = """
echo "before:$(cat /root/.cache/probe/mark 2>/dev/null || echo none)" >> /cyclone/results/__result__
mkdir -p /root/.cache/probe && echo "$WORKFLOWRUN_NAME" > /root/.cache/probe/mark
"""
ACCELERATED = {"metadata": {"labels": {LABEL_ACCELERATION: "true"}}}


async def _cached_run(tenant, project: str) -> str:
    """What the project's cache held when an accelerated run started (`none`: empty)."""
    run = await start_run(tenant.http, project, "cached", ACCELERATED)
    done = await wait_run(tenant.http, project, "cached", run["metadata"]["name"])
    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
    [output] = done["status"]["stages"]["probe"]["outputs"]
    assert output["key"] == "before"
    return output["value"]


async def _finished_task(tenant, project: str, name: str) -> dict:
    for _ in range(600):
        task = expect(await tenant.http.get(f"/projects/{project}/cleancachetasks/{name}"), 200)
        if task["phase"] in ("Succeeded", "Failed"):
            return task
        await asyncio.sleep(0.1)
    raise AssertionError(f"cache cleaning {name} did not end: {task}")


async def test_a_tenant_empties_its_own_project_caches_and_never_another_tenants(stack):
    a, b = stack.a, stack.b
    await apply_flow(a.http, "pa", "cached", [shell_stage("probe", PROBE)])
    first = (await start_run(a.http, "pa", "cached", ACCELERATED))["metadata"]["name"]
    await wait_run(a.http, "pa", "cached", first)

    for attempt in (b.http.post("/projects/pa/cleancachetasks"),
                    b.http.get("/projects/pa/cleancachetasks/cachegc--pa")):
        response = await attempt
        assert response.status_code == 404, response.text
        assert "project 'pa' not found" in response.text
    await apply_flow(b.http, "pa", "cached", [shell_stage("probe", PROBE)])
    theirs = expect(await b.http.post("/projects/pa/cleancachetasks"), 202)
    assert (await _finished_task(b, "pa", theirs["name"]))["phase"] == "Succeeded"
    assert await _cached_run(a, "pa") != "none"

    response = await a.http.post("/projects/pa/cleancachetasks")
    task = expect(response, 202)
    assert (task["name"], task["project"], task["folder"]) == (
        "cachegc--pa", "pa", "caches/pa")
    assert response.headers["location"].endswith("/projects/pa/cleancachetasks/cachegc--pa")
    assert (await _finished_task(a, "pa", task["name"]))["phase"] == "Succeeded"
    assert await _cached_run(a, "pa") == "none"

    token = a.http.headers["authorization"].removeprefix("Bearer ")
    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "--server", stack.base_url, "--token", token, "--tenant", a.name,
        "project", "clean-cache", "pa", "--wait", "--timeout", "60"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "cleancachetask/cachegc--pa Succeeded"
    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "--server", stack.base_url, "--token", token, "--tenant", a.name,
        "run", "cached", "-p", "pa", "--name", "by-cli", "--accelerate"])
    assert result.exit_code == 0, result.output
    by_cli = await wait_run(a.http, "pa", "cached", "by-cli")
    assert by_cli["metadata"]["labels"][LABEL_ACCELERATION] == "true"
    assert by_cli["status"]["stages"]["probe"]["outputs"] == [{"key": "before", "value": "none"}]
    assert await _cached_run(a, "pa") == "by-cli"

    missing = await a.http.post("/projects/nope/cleancachetasks")
    assert missing.status_code == 404 and "project 'nope' not found" in missing.text
    paths = expect(await stack.admin.get(f"{stack.base_url}/openapi.json"), 200)["paths"]
    assert "post" in paths["/apis/v1alpha1/projects/{project}/cleancachetasks"]
    assert "get" in paths["/apis/v1alpha1/projects/{project}/cleancachetasks/{task}"]
