"""REST retry and rerun of a finished run: a succeeded run has nothing to retry (409), a
rerun of any run runs every stage again."""

from __future__ import annotations

from cyclone.kube import kinds

from .helpers import create_tenant, make_client, tenant_token

RUNS = "/projects/demo/workflows/ci/workflowruns"
STAGE = {"metadata": {"name": "build"}, "spec": {"pod": {
    "spec": {"containers": [{"image": "busybox", "command": ["true"]}]}}}}


async def _finished_run(client, cluster, name: str, phase: str) -> None:
    assert (await client.post("/projects", json={"metadata": {"name": "demo"}})).status_code \
        in (201, 409)
    await client.post("/projects/demo/stages", json=STAGE)
    await client.post("/projects/demo/workflows", json={
        "metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
    response = await client.post(RUNS, json={"metadata": {"name": name}, "spec": {
        "globalVariables": [{"name": "A", "value": "1"}],
        "stages": [{"name": "build", "parameters": [{"name": "cmd", "value": "make"}]}]}})
    assert response.status_code == 201, response.text
    run = await cluster.get(kinds.WORKFLOW_RUN, name, "cyclone-devops")
    run["status"] = {"overall": {"phase": phase}}
    await cluster.replace_status(run)


async def test_retry_of_a_succeeded_run_is_a_conflict_that_points_to_rerun(devops, cluster):
    await _finished_run(devops, cluster, "r1", "Succeeded")
    response = await devops.post(f"{RUNS}/r1/retry")
    assert response.status_code == 409, response.text
    assert response.json()["message"] == ("run r1 succeeded: nothing to retry; "
                                          "use `cyclone rerun r1`")
    assert (await devops.get(RUNS)).json()["metadata"]["total"] == 1


async def test_rerun_starts_a_run_of_every_stage_with_the_same_inputs(devops, cluster):
    await _finished_run(devops, cluster, "r2", "Succeeded")
    response = await devops.post(f"{RUNS}/r2/rerun")
    assert response.status_code == 201, response.text
    rerun = response.json()
    assert rerun["metadata"]["name"].startswith("r2-rerun-")
    assert "retryOf" not in rerun["spec"]
    assert rerun["spec"]["globalVariables"] == [{"name": "A", "value": "1"}]
    assert rerun["spec"]["stages"][0]["parameters"] == [{"name": "cmd", "value": "make"}]
    stored = await cluster.get(kinds.WORKFLOW_RUN, rerun["metadata"]["name"], "cyclone-devops")
    assert stored["spec"]["workflowRef"]["name"] == "ci"


async def test_rerun_of_a_failed_run_is_a_run_too(devops, cluster):
    await _finished_run(devops, cluster, "r3", "Failed")
    response = await devops.post(f"{RUNS}/r3/rerun")
    assert response.status_code == 201, response.text
    assert "retryOf" not in response.json()["spec"]


async def test_another_tenant_cannot_rerun_a_run(app, admin, devops, cluster):
    await _finished_run(devops, cluster, "r4", "Failed")
    await create_tenant(admin, "qa")
    async with make_client(app, await tenant_token(admin, "qa"), tenant="devops") as qa:
        assert (await qa.post(f"{RUNS}/r4/rerun")).status_code == 404
    assert (await devops.get(RUNS)).json()["metadata"]["total"] == 1
