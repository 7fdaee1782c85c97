"""Steps a tenant takes through the REST API: a project, stages, a workflow, runs."""

from __future__ import annotations

import asyncio

import httpx

from cyclone.engine.core.phases import is_terminal

from .conftest import STAGE_RESOURCES


def shell_stage(name: str, script: str, **pod_spec: object) -> dict:
    """A Stage whose one container runs `script` with sh (the host runtime ignores the image)."""
    container = {"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                 "resources": STAGE_RESOURCES}
    return {"metadata": {"name": name},
            "spec": {"pod": {"spec": {"containers": [container], **pod_spec}}}}


def expect(response: httpx.Response, *codes: int) -> dict:
    assert response.status_code in codes, (response.request.method, response.request.url,
                                           response.status_code, response.text)
    return response.json() if response.content else {}


async def apply_flow(http: httpx.AsyncClient, project: str, workflow: str,
                     stages: list[dict]) -> None:
    """Create the project (if missing), the stages and a workflow running them in a chain."""
    response = await http.post("/projects", json={"metadata": {"name": project}})
    expect(response, 201, 409)
    for stage in stages:
        expect(await http.post(f"/projects/{project}/stages", json=stage), 201)
    names = [s["metadata"]["name"] for s in stages]
    dag = [{"name": n, "depends": names[i - 1:i]} for i, n in enumerate(names)]
    expect(await http.post(f"/projects/{project}/workflows", json={
        "metadata": {"name": workflow}, "spec": {"stages": dag}}), 201)


def runs_path(project: str, workflow: str) -> str:
    return f"/projects/{project}/workflows/{workflow}/workflowruns"


async def start_run(http: httpx.AsyncClient, project: str, workflow: str,
                    body: dict | None = None) -> dict:
    return expect(await http.post(runs_path(project, workflow), json=body or {}), 201)


async def wait_run(http: httpx.AsyncClient, project: str, workflow: str, run: str,
                   within: float = 90.0) -> dict:
    """The run once its overall phase is terminal (fails the test after `within` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = expect(await http.get(f"{runs_path(project, workflow)}/{run}"), 200)
        phase = ((found.get("status") or {}).get("overall") or {}).get("phase")
        if phase and is_terminal(phase):
            return found
        assert loop.time() < deadline, f"run {run} still {phase} after {within}s: {found}"
        await asyncio.sleep(0.2)
