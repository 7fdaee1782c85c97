"""A tenant with kubectl writes an object nested far deeper than Python's JSON decoder
recurses (kube-apiserver accepts 10,000 levels): the engine and server keep working for
every tenant, the tenant's own object included."""

from __future__ import annotations

import httpx
import pytest

from .flows import apply_flow, expect, shell_stage, start_run, wait_run


def deep_stage(namespace: str, depth: int) -> str:
    nested = '{"a":' * depth + "{}" + "}" * depth
    return ('{"apiVersion":"cyclone.dev/v1alpha1","kind":"Stage","metadata":{"name":"deep",'
            f'"namespace":"{namespace}"}},"spec":{{"pod":{{"spec":{{"containers":'
            f'[{{"name":"c","image":"busybox"}}],"x":{nested}}}}}}}}}')


@pytest.mark.k8s
@pytest.mark.parametrize("stack", ["kube"], indirect=True)
async def test_an_object_nested_9000_levels_deep_stalls_no_one(stack, tenancy_plane):
    async with httpx.AsyncClient(verify=False) as kubectl:
        response = await kubectl.post(
            f"{tenancy_plane.server}/apis/cyclone.dev/v1alpha1/namespaces/"
            f"{stack.b.namespace}/stages",
            content=deep_stage(stack.b.namespace, 9000),
            headers={"Authorization": f"Bearer {tenancy_plane.token}",
                     "Content-Type": "application/json"})
    assert response.status_code == 201, response.text[:300]

    await apply_flow(stack.a.http, "demo", "ci", [shell_stage("hello", "echo hello")])
    listed = expect(await stack.b.http.get("/projects/any/stages"), 200, 404)
    assert "items" in listed or listed.get("reason") == "NotFound"
    run = await start_run(stack.a.http, "demo", "ci")
    done = await wait_run(stack.a.http, "demo", "ci", run["metadata"]["name"])
    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
