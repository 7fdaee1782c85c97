"""The stack itself: each tenant runs its own workflow and sees only its own objects."""

from __future__ import annotations

from .flows import apply_flow, expect, shell_stage, start_run, wait_run


async def test_each_tenant_runs_its_own_workflow_and_sees_nothing_of_the_other(stack):
    for tenant in (stack.a, stack.b):
        await apply_flow(tenant.http, "demo", "ci", [
            shell_stage("hello", f"echo hello {tenant.name}")])
    run = await start_run(stack.a.http, "demo", "ci")
    done = await wait_run(stack.a.http, "demo", "ci", run["metadata"]["name"])
    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
    assert done["metadata"]["namespace"] == stack.a.namespace
    path = f"/projects/demo/workflows/ci/workflowruns/{run['metadata']['name']}"
    expect(await stack.b.http.get(path), 404)
    listed = expect(await stack.b.http.get("/projects/demo/workflows/ci/workflowruns"), 200)
    assert listed["items"] == []
