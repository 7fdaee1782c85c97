"""Bad input answers a clear 4xx: absurd timeouts, runs that could never start, empty
workflows."""

from __future__ import annotations

import pytest

RUNS = "/projects/demo/workflows/ci/workflowruns"
STAGE = {"metadata": {"name": "build"}, "spec": {"pod": {
    "spec": {"containers": [{"image": "busybox", "command": ["true"]}]}}}}


@pytest.fixture
async def demo(devops):
    assert (await devops.post("/projects", json={"metadata": {"name": "demo"}})).status_code \
        == 201
    assert (await devops.post("/projects/demo/stages", json=STAGE)).status_code == 201
    response = await devops.post("/projects/demo/workflows", json={
        "metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
    assert response.status_code == 201, response.text
    return devops


@pytest.mark.parametrize("duration", ["99999999999h", "9" * 400 + "h", "721h"])
async def test_a_run_with_an_absurd_timeout_is_refused(demo, duration) -> None:
    response = await demo.post(RUNS, json={"spec": {"timeout": duration}})
    assert response.status_code == 422, response.text
    assert "spec.timeout" in response.json()["message"]
    assert "30 days" in response.json()["message"]
    assert (await demo.get(RUNS)).json()["items"] == []


async def test_a_run_with_a_long_but_bounded_timeout_is_accepted(demo) -> None:
    response = await demo.post(RUNS, json={"spec": {"timeout": "720h"}})
    assert response.status_code == 201, response.text


async def test_a_trigger_with_an_absurd_timeout_is_refused(demo) -> None:
    response = await demo.post("/projects/demo/workflows/ci/workflowtriggers", json={
        "metadata": {"name": "nightly"},
        "spec": {"type": "Cron", "cron": {"schedule": "0 2 * * *"},
                 "timeout": "99999999999h"}})
    assert response.status_code == 422, response.text
    assert "spec.timeout" in response.json()["message"]


async def test_a_delegation_stage_with_an_absurd_timeout_is_refused(demo) -> None:
    response = await demo.post("/projects/demo/stages", json={
        "metadata": {"name": "external"},
        "spec": {"delegation": {"url": "https://ci.example.com/hook",
                                "timeout": "99999999999h"}}})
    assert response.status_code == 422, response.text
    assert "spec.delegation.timeout" in response.json()["message"]


@pytest.mark.parametrize("field", ["startStages", "endStages"])
async def test_a_run_naming_an_unknown_stage_is_refused(demo, field) -> None:
    response = await demo.post(RUNS, json={"spec": {field: ["build", "deploy"]}})
    assert response.status_code == 422, response.text
    body = response.json()
    assert f"spec.{field}[1]" in body["message"]
    assert '"deploy"' in body["message"]
    assert (await demo.get(RUNS)).json()["items"] == []


async def test_a_run_of_known_start_stages_is_accepted(demo) -> None:
    response = await demo.post(RUNS, json={"spec": {"startStages": ["build"]}})
    assert response.status_code == 201, response.text


async def test_a_workflow_without_stages_is_refused(demo) -> None:
    for spec in ({"stages": []}, {}):
        response = await demo.post("/projects/demo/workflows",
                                   json={"metadata": {"name": "empty"}, "spec": spec})
        assert response.status_code == 422, response.text
        assert "spec.stages" in response.json()["message"]
    emptied = await demo.put("/projects/demo/workflows/ci",
                             json={"metadata": {"name": "ci"}, "spec": {"stages": []}})
    assert emptied.status_code == 422, emptied.text


async def test_deep_json_in_a_run_answers_422_not_500(demo) -> None:
    body = b'{"spec": {"globalVariables": ' + b"[" * 600 + b"]" * 600 + b"}}"
    response = await demo.post(RUNS, content=body,
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "nests deeper" in response.json()["message"]
