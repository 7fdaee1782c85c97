from __future__ import annotations

import json
from datetime import UTC, datetime

from cyclone.api import keys
from cyclone.engine import signing as engine_delegation
from cyclone.engine.core.delegation import result_annotation, taken_result
from cyclone.engine.core.tokens import Purpose, delegation_token
from cyclone.kube import kinds

from .helpers import create_tenant, make_client, tenant_token

RUNS = "/projects/demo/workflows/ci/workflowruns"
STAGE = {"metadata": {"name": "build"}, "spec": {"pod": {
    "spec": {"containers": [{"image": "busybox", "command": ["true"]}]}}}}


async def _setup(client) -> None:
    assert (await client.post("/projects", json={"metadata": {"name": "demo"}})).status_code \
        == 201
    assert (await client.post("/projects/demo/stages", json=STAGE)).status_code == 201
    response = await client.post("/projects/demo/workflows", json={
        "metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
    assert response.status_code == 201, response.text


async def test_create_run_with_parameters_and_variables(devops, cluster):
    await _setup(devops)
    response = await devops.post(RUNS, json={"spec": {
        "globalVariables": [{"name": "IMAGE_TAG", "value": "v1"}],
        "stages": [{"name": "build", "parameters": [{"name": "cmd", "value": "make"}]}]}})
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["metadata"]["name"].startswith("ci-")
    assert run["metadata"]["labels"][keys.LABEL_PROJECT] == "demo"
    assert run["metadata"]["labels"][keys.LABEL_WORKFLOW] == "ci"
    assert run["spec"]["workflowRef"]["name"] == "ci"
    assert run["spec"]["globalVariables"] == [{"name": "IMAGE_TAG", "value": "v1"}]
    assert run["spec"]["executionContext"] == {
        "cluster": keys.CONTROL_CLUSTER_NAME, "namespace": "cyclone-devops",
        "pvc": "cyclone-pvc-devops"}
    stored = await cluster.get(kinds.WORKFLOW_RUN, run["metadata"]["name"], "cyclone-devops")
    assert stored["spec"]["stages"][0]["parameters"][0]["value"] == "make"


async def test_a_run_records_its_stage_specs_whatever_the_caller_sent(devops, cluster):
    await _setup(devops)
    response = await devops.post(RUNS, json={"metadata": {
        "name": "forged", "annotations": {keys.ANNOTATION_STAGE_SPECS: '{"build": {}}'}}})
    assert response.status_code == 201, response.text
    stored = await cluster.get(kinds.WORKFLOW_RUN, "forged", "cyclone-devops")
    assert json.loads(stored["metadata"]["annotations"][keys.ANNOTATION_STAGE_SPECS]) == {
        "build": STAGE["spec"]}


async def test_a_run_records_who_started_it_and_through_what(devops, admin, cluster):
    await _setup(devops)
    forged = {keys.ANNOTATION_STARTED_BY: "the admin via the web UI"}
    by_token = (await devops.post(RUNS, json={"metadata": {"annotations": forged}})).json()
    token_id = (await admin.get("/tenants/devops/tokens")).json()["items"][0]["id"]
    assert by_token["metadata"]["annotations"][keys.ANNOTATION_STARTED_BY] == (
        f"token {token_id} of tenant devops via the API")
    by_cli = (await admin.post(RUNS, json={}, headers={
        "X-Tenant": "devops", "User-Agent": "cyclone-cli/0.1.0"})).json()
    assert by_cli["metadata"]["annotations"][keys.ANNOTATION_STARTED_BY] == (
        "the admin via the CLI")
    rerun = (await admin.post(f"{RUNS}/{by_token['metadata']['name']}/rerun",
                              headers={"X-Tenant": "devops"})).json()
    assert rerun["metadata"]["annotations"][keys.ANNOTATION_STARTED_BY] == (
        "the admin via the API")


async def test_run_execution_context_comes_from_opened_cluster(devops):
    await _setup(devops)
    await devops.post("/integrations", json={"metadata": {"name": "worker"}, "spec": {
        "type": "Cluster", "cluster": {"clusterName": "w1", "namespace": "cyclone-devops-w"}}})
    await devops.put("/integrations/worker/opencluster")
    run = (await devops.post(RUNS, json={"metadata": {"name": "r1"}})).json()
    assert run["spec"]["executionContext"] == {
        "cluster": "w1", "namespace": "cyclone-devops-w", "pvc": "cyclone-pvc-devops"}


async def test_stop_pause_resume_patch_spec(devops):
    await _setup(devops)
    await devops.post(RUNS, json={"metadata": {"name": "r1"}})
    assert (await devops.put(f"{RUNS}/r1/pause")).json()["spec"]["paused"] is True
    assert (await devops.put(f"{RUNS}/r1/resume")).json()["spec"]["paused"] is False
    assert (await devops.put(f"{RUNS}/r1/stop")).json()["spec"]["stopped"] is True
    assert (await devops.put(f"{RUNS}/missing/stop")).status_code == 404


async def test_retry_creates_new_run_with_retry_of(devops):
    await _setup(devops)
    await devops.post(RUNS, json={"metadata": {"name": "r1"}, "spec": {
        "globalVariables": [{"name": "A", "value": "1"}]}})
    await devops.put(f"{RUNS}/r1/stop")
    response = await devops.post(f"{RUNS}/r1/retry")
    assert response.status_code == 201, response.text
    retry = response.json()
    assert retry["metadata"]["name"] != "r1"
    assert retry["spec"]["retryOf"] == "r1"
    assert retry["spec"]["globalVariables"] == [{"name": "A", "value": "1"}]
    assert "stopped" not in retry["spec"]
    listed = (await devops.get(RUNS)).json()
    assert listed["metadata"]["total"] == 2


async def test_list_runs_filters_by_phase_and_delete(devops, cluster):
    await _setup(devops)
    for name in ("r1", "r2"):
        await devops.post(RUNS, json={"metadata": {"name": name}})
    run = await cluster.get(kinds.WORKFLOW_RUN, "r1", "cyclone-devops")
    run["status"] = {"overall": {"phase": "Succeeded"}}
    await cluster.replace_status(run)
    succeeded = (await devops.get(RUNS, params={"filter": "phase=Succeeded"})).json()
    assert [r["metadata"]["name"] for r in succeeded["items"]] == ["r1"]
    assert (await devops.delete(f"{RUNS}/r1")).status_code == 204
    # No engine runs here: the run waits for the engine's cleanup finalizer, set when the
    # run was created, so it is only marked for deletion.
    deleted = await cluster.get(kinds.WORKFLOW_RUN, "r1", "cyclone-devops")
    assert deleted["metadata"]["deletionTimestamp"]
    assert deleted["metadata"]["finalizers"] == [keys.FINALIZER_RUN_CLEANUP]


async def test_run_of_missing_workflow_is_404(devops):
    await _setup(devops)
    response = await devops.post("/projects/demo/workflows/ghost/workflowruns", json={})
    assert response.status_code == 404


async def test_bad_run_spec_is_4xx(devops):
    await _setup(devops)
    response = await devops.post(RUNS, json={"metadata": {"name": "r"}, "spec": {
        "timeout": "forever"}})
    assert response.status_code == 422
    assert "timeout" in response.json()["message"]


async def test_other_tenant_cannot_touch_runs(app, admin, devops):
    await _setup(devops)
    await devops.post(RUNS, json={"metadata": {"name": "r1"}})
    await create_tenant(admin, "qa")
    async with make_client(app, await tenant_token(admin, "qa"), tenant="devops") as qa:
        assert (await qa.get(f"{RUNS}/r1")).status_code == 404
        assert (await qa.put(f"{RUNS}/r1/stop")).status_code == 404
        assert (await qa.post(f"{RUNS}/r1/retry")).status_code == 404
    async with make_client(app, await tenant_token(admin, "qa")) as qa:
        assert (await qa.get(RUNS)).status_code == 404
        assert (await qa.delete(f"{RUNS}/r1")).status_code == 404
    assert (await devops.get(f"{RUNS}/r1")).json()["spec"].get("stopped") is None


async def test_workflow_and_project_stats(devops, cluster):
    await _setup(devops)
    today = datetime.now(UTC).date().isoformat()
    for name, phase in (("r1", "Succeeded"), ("r2", "Failed"), ("r3", None)):
        await devops.post(RUNS, json={"metadata": {"name": name}})
        if phase:
            run = await cluster.get(kinds.WORKFLOW_RUN, name, "cyclone-devops")
            run["status"] = {"overall": {"phase": phase, "startTime": "2020-01-01T00:00:00Z",
                                         "lastTransitionTime": "2020-01-01T00:01:00Z"}}
            await cluster.replace_status(run)
    stats = (await devops.get("/projects/demo/workflows/ci/stats")).json()
    assert stats["overview"]["total"] == 3
    assert stats["overview"]["phases"]["Succeeded"] == 1
    assert stats["overview"]["phases"]["Failed"] == 1
    assert stats["overview"]["successRatio"] == 0.5
    assert stats["durations"]["count"] == 2 and stats["durations"]["averageSeconds"] == 60
    assert stats["details"][-1]["date"] == today and stats["details"][-1]["total"] == 3
    project = (await devops.get("/projects/demo/stats")).json()
    assert project["workflowCount"] == 1 and project["overview"]["total"] == 3
    bad = await devops.get("/projects/demo/stats", params={"startTime": "yesterday"})
    assert bad.status_code == 400


async def _waiting_delegation_run(devops, cluster) -> dict:
    await _setup(devops)
    await devops.post(RUNS, json={"metadata": {"name": "r1"}})
    run = await cluster.get(kinds.WORKFLOW_RUN, "r1", "cyclone-devops")
    run["status"] = {"stages": {"build": {"status": {"phase": "Waiting"}}},
                     "overall": {"phase": "Waiting"}}
    return await cluster.replace_status(run)


async def test_delegation_callback_records_result(app, devops, cluster):
    run = await _waiting_delegation_run(devops, cluster)
    key = await engine_delegation.token_key(cluster, engine_delegation.DEFAULT_KEY_NAMESPACE,
                                            Purpose.DELEGATION)
    token = delegation_token(key, run["metadata"]["uid"], "build")
    async with make_client(app, tenant="devops") as outside:
        response = await outside.put("/workflowruns/r1/stages/build/result", json={
            "phase": "Succeeded", "message": "done", "outputs": {"image": "x:1"},
            "token": token})
    assert response.status_code == 200, response.text
    assert response.json()["status"]["phase"] == "Succeeded"
    stored = await cluster.get(kinds.WORKFLOW_RUN, "r1", "cyclone-devops")
    stage = stored["status"]["stages"]["build"]
    assert stage["status"]["phase"] == "Waiting", "the engine applies the result, not the server"
    record = stored["metadata"]["annotations"][result_annotation("build")]
    taken = taken_result(stage, record, key, run["metadata"]["uid"], "build")
    assert taken is not None and taken.status == response.json()["status"]
    assert taken.outputs == [{"key": "image", "value": "x:1"}]


async def test_delegation_callback_rejects_bad_token(app, devops, cluster):
    await _waiting_delegation_run(devops, cluster)
    async with make_client(app, tenant="devops") as outside:
        wrong = await outside.put("/workflowruns/r1/stages/build/result",
                                  json={"phase": "Succeeded"},
                                  headers={"X-Delegation-Token": "0" * 64})
        missing = await outside.put("/workflowruns/r1/stages/build/result",
                                    json={"phase": "Succeeded"})
        nothing = await outside.put("/workflowruns/ghost/stages/build/result",
                                    json={"phase": "Succeeded", "token": "x"})
    assert wrong.status_code == 403
    assert missing.status_code == 401
    assert (nothing.status_code, nothing.json()) == (wrong.status_code, wrong.json())
    stored = await cluster.get(kinds.WORKFLOW_RUN, "r1", "cyclone-devops")
    assert stored["status"]["stages"]["build"]["status"]["phase"] == "Waiting"
