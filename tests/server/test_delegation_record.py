"""The delegation callback records the outside system's answer on the run and leaves the
stage's status to the engine; one answer per stage."""

from __future__ import annotations

from cyclone.engine.core.delegation import result_annotation, verified_result
from cyclone.engine.core.tokens import Purpose, delegation_token
from cyclone.engine.signing import DEFAULT_KEY_NAMESPACE, token_key
from cyclone.kube import kinds

from .helpers import make_client

NAMESPACE = "cyclone-devops"
STAGE = {"metadata": {"name": "build"}, "spec": {"delegation": {
    "type": "approval", "url": "https://approvals.example/hook"}}}


async def waiting_run(devops, cluster) -> dict:
    """A run whose delegation stage `build` waits, as the engine leaves it (no engine here:
    nothing takes the recorded result)."""
    assert (await devops.post("/projects", json={"metadata": {"name": "demo"}})).status_code \
        == 201
    assert (await devops.post("/projects/demo/stages", json=STAGE)).status_code == 201
    response = await devops.post("/projects/demo/workflows", json={
        "metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
    assert response.status_code == 201, response.text
    response = await devops.post("/projects/demo/workflows/ci/workflowruns",
                                 json={"metadata": {"name": "r1"}})
    assert response.status_code == 201, response.text
    run = await cluster.get(kinds.WORKFLOW_RUN, "r1", NAMESPACE)
    run["status"] = {"stages": {"build": {"status": {"phase": "Waiting"}}},
                     "overall": {"phase": "Waiting"}}
    return await cluster.replace_status(run)


async def test_a_second_answer_before_the_engine_takes_the_first_is_refused(app, devops,
                                                                           cluster):
    run = await waiting_run(devops, cluster)
    key = await token_key(cluster, DEFAULT_KEY_NAMESPACE, Purpose.DELEGATION)
    token = delegation_token(key, run["metadata"]["uid"], "build")
    async with make_client(app, tenant="devops") as outside:
        first = await outside.put("/workflowruns/r1/stages/build/result", json={
            "phase": "Succeeded", "message": "yes", "token": token})
        second = await outside.put("/workflowruns/r1/stages/build/result", json={
            "phase": "Failed", "message": "no", "token": token})
    assert first.status_code == 200, first.text
    assert first.json()["status"]["phase"] == "Succeeded"
    assert second.status_code == 409, second.text
    assert second.json()["message"] == "stage build of r1 has a result reported already"
    stored = await cluster.get(kinds.WORKFLOW_RUN, "r1", NAMESPACE)
    recorded = verified_result(key, stored["metadata"]["uid"], "build",
                               stored["metadata"]["annotations"][result_annotation("build")])
    assert recorded is not None and (recorded["phase"], recorded["message"]) == (
        "Succeeded", "yes")
    assert stored["status"] == run["status"]
