from __future__ import annotations

from cyclone.api import keys
from cyclone.kube import kinds

from .helpers import create_tenant, make_client, tenant_token

STAGE = {"metadata": {"name": "build"}, "spec": {"pod": {
    "inputs": {"arguments": [{"name": "cmd", "value": "make"}]},
    "spec": {"containers": [{"image": "busybox", "command": ["sh", "-c", "{{ cmd }}"]}]}}}}
WORKFLOW = {"metadata": {"name": "ci"}, "spec": {"stages": [
    {"name": "build"}, {"name": "test", "depends": ["build"]}]}}


async def make_project(client, name: str = "demo") -> None:
    response = await client.post("/projects", json={"metadata": {"name": name}, "spec": {}})
    assert response.status_code == 201, response.text


async def test_project_crud(devops, cluster):
    await make_project(devops)
    got = (await devops.get("/projects/demo")).json()
    assert got["kind"] == "Project"
    assert got["metadata"]["labels"][keys.LABEL_PROJECT] == "demo"
    stored = await cluster.get(kinds.PROJECT, "demo", "cyclone-devops")
    assert stored["metadata"]["uid"] == got["metadata"]["uid"]
    updated = await devops.put("/projects/demo", json={
        "metadata": {"annotations": {keys.ANNOTATION_DESCRIPTION: "d"}},
        "spec": {"quota": {"limits.cpu": "1"}}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["spec"]["quota"] == {"limits.cpu": "1"}
    assert (await devops.delete("/projects/demo")).status_code == 204
    assert (await devops.get("/projects/demo")).status_code == 404


async def test_project_name_generated_from_alias(devops):
    response = await devops.post("/projects", json={
        "metadata": {"annotations": {keys.ANNOTATION_ALIAS: "frontend"}}, "spec": {}})
    assert response.status_code == 201
    assert response.json()["metadata"]["name"] == "frontend"
    response = await devops.post("/projects", json={
        "metadata": {"annotations": {keys.ANNOTATION_ALIAS: "Back End!"}}, "spec": {}})
    assert response.json()["metadata"]["name"].startswith("back-end-")
    missing = await devops.post("/projects", json={"metadata": {}, "spec": {}})
    assert missing.status_code == 422
    assert "metadata.name" in missing.json()["message"]


async def test_resources_stages_workflows_carry_project_label(devops, cluster):
    await make_project(devops)
    resource = {"metadata": {"name": "repo"}, "spec": {"type": "Git", "parameters": [
        {"name": "SCM_URL", "value": "https://example/repo.git"}]}}
    assert (await devops.post("/projects/demo/resources", json=resource)).status_code == 201
    assert (await devops.post("/projects/demo/stages", json=STAGE)).status_code == 201
    test_stage = {**STAGE, "metadata": {"name": "test"}}
    assert (await devops.post("/projects/demo/stages", json=test_stage)).status_code == 201
    response = await devops.post("/projects/demo/workflows", json=WORKFLOW)
    assert response.status_code == 201, response.text
    for kind, name in ((kinds.RESOURCE, "repo"), (kinds.STAGE, "build"),
                       (kinds.WORKFLOW, "ci")):
        obj = await cluster.get(kind, name, "cyclone-devops")
        assert obj["metadata"]["labels"][keys.LABEL_PROJECT] == "demo"
    stages = (await devops.get("/projects/demo/stages")).json()
    assert stages["metadata"]["total"] == 2


async def test_object_of_other_project_is_404(devops):
    await make_project(devops, "a")
    await make_project(devops, "b")
    await devops.post("/projects/a/stages", json=STAGE)
    assert (await devops.get("/projects/a/stages/build")).status_code == 200
    assert (await devops.get("/projects/b/stages/build")).status_code == 404
    assert (await devops.delete("/projects/b/stages/build")).status_code == 404
    assert (await devops.get("/projects/missing/stages")).status_code == 404


async def test_workflow_with_cycle_or_unknown_depends_is_rejected(devops):
    await make_project(devops)
    cycle = {"metadata": {"name": "loop"}, "spec": {"stages": [
        {"name": "a", "depends": ["b"]}, {"name": "b", "depends": ["a"]}]}}
    response = await devops.post("/projects/demo/workflows", json=cycle)
    assert response.status_code == 422
    assert "cycle" in response.json()["message"]
    unknown = {"metadata": {"name": "u"}, "spec": {"stages": [
        {"name": "a", "depends": ["ghost"]}]}}
    response = await devops.post("/projects/demo/workflows", json=unknown)
    assert response.status_code == 422
    assert "ghost" in response.json()["message"]


async def test_stage_needs_exactly_one_workload(devops):
    await make_project(devops)
    response = await devops.post("/projects/demo/stages",
                                 json={"metadata": {"name": "empty"}, "spec": {}})
    assert response.status_code == 422
    assert response.json()["reason"] == "Invalid"


async def test_bad_labels_and_types_are_4xx(devops):
    await make_project(devops)
    bad_label = await devops.post("/projects/demo/stages", json={
        **STAGE, "metadata": {"name": "x", "labels": {"bad key!": "v"}}})
    assert bad_label.status_code == 422
    wrong_type = await devops.post("/projects/demo/stages", json={
        "metadata": {"name": "x"}, "spec": "not an object"})
    assert wrong_type.status_code == 422
    name_mismatch = await devops.put("/projects/demo", json={
        "metadata": {"name": "other"}, "spec": {}})
    assert name_mismatch.status_code == 400


async def test_delete_project_deletes_its_objects(devops, cluster):
    await make_project(devops)
    await devops.post("/projects/demo/stages", json=STAGE)
    await devops.post("/projects/demo/stages", json={**STAGE, "metadata": {"name": "test"}})
    await devops.post("/projects/demo/workflows", json=WORKFLOW)
    assert (await devops.delete("/projects/demo")).status_code == 204
    left = (await cluster.list(kinds.STAGE, "cyclone-devops",
                               label_selector=f"{keys.LABEL_PROJECT}=demo")).items
    assert [o for o in left if not o["metadata"].get("deletionTimestamp")] == []


async def test_list_conventions(devops):
    await make_project(devops)
    for name in ("alpha", "beta", "gamma", "delta"):
        await devops.post("/projects/demo/stages", json={**STAGE, "metadata": {
            "name": name, "labels": {"team": "x" if name in ("alpha", "beta") else "y"}}})
    page = (await devops.get("/projects/demo/stages", params={
        "sort": "name", "ascending": "true", "start": 1, "limit": 2})).json()
    assert page["metadata"] == {"total": 4, "itemsLength": 2}
    assert [o["metadata"]["name"] for o in page["items"]] == ["beta", "delta"]
    filtered = (await devops.get("/projects/demo/stages",
                                 params={"filter": "team=x"})).json()
    assert sorted(o["metadata"]["name"] for o in filtered["items"]) == ["alpha", "beta"]
    by_name = (await devops.get("/projects/demo/stages", params={"filter": "name=amm"})).json()
    assert [o["metadata"]["name"] for o in by_name["items"]] == ["gamma"]
    descending = (await devops.get("/projects/demo/stages", params={"sort": "name"})).json()
    assert descending["items"][0]["metadata"]["name"] == "gamma"
    bad = await devops.get("/projects/demo/stages", params={"filter": "novalue"})
    assert bad.status_code == 400
    negative = await devops.get("/projects/demo/stages", params={"start": -1})
    assert negative.status_code == 422


async def test_builtin_templates_exist_and_are_read_only(devops, admin):
    listed = (await devops.get("/templates")).json()
    names = {t["metadata"]["name"] for t in listed["items"]}
    assert {"shell", "python-test", "golang-build", "maven-build", "nodejs-build"} <= names
    shell = (await devops.get("/templates/shell")).json()
    assert shell["metadata"]["labels"][keys.LABEL_BUILTIN] == "true"
    assert shell["metadata"]["labels"][keys.LABEL_STAGE_TEMPLATE] == "true"
    assert shell["metadata"]["namespace"] == "cyclone-system"
    assert (await devops.delete("/templates/shell")).status_code == 403
    assert (await admin.delete("/templates/shell")).status_code == 403
    own = await devops.post("/templates", json={**STAGE, "metadata": {"name": "mine"}})
    assert own.status_code == 201
    assert own.json()["metadata"]["labels"][keys.LABEL_STAGE_TEMPLATE] == "true"
    assert (await devops.delete("/templates/mine")).status_code == 204


async def test_resource_types_include_builtins(devops):
    names = {t["metadata"]["name"] for t in (await devops.get("/resourcetypes")).json()["items"]}
    assert {"git", "svn", "image", "http"} <= names
    git = (await devops.get("/resourcetypes/git")).json()
    assert git["spec"]["bind"]["integrationType"] == "SCM"


async def test_triggers_point_at_their_workflow(devops, cluster):
    await make_project(devops)
    await devops.post("/projects/demo/stages", json=STAGE)
    await devops.post("/projects/demo/workflows",
                      json={"metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
    trigger = {"metadata": {"name": "nightly"}, "spec": {
        "type": "Cron", "cron": {"schedule": "0 2 * * *"}}}
    path = "/projects/demo/workflows/ci/workflowtriggers"
    response = await devops.post(path, json=trigger)
    assert response.status_code == 201, response.text
    stored = await cluster.get(kinds.WORKFLOW_TRIGGER, "nightly", "cyclone-devops")
    assert stored["spec"]["workflowRef"]["name"] == "ci"
    assert stored["metadata"]["labels"][keys.LABEL_WORKFLOW] == "ci"
    assert (await devops.get(path)).json()["metadata"]["total"] == 1
    bad = await devops.post(path, json={"metadata": {"name": "b"}, "spec": {
        "type": "Cron", "cron": {"schedule": "every day"}}})
    assert bad.status_code == 422
    assert (await devops.delete(f"{path}/nightly")).status_code == 204


async def test_other_tenant_cannot_reach_projects(app, admin, devops):
    await make_project(devops)
    await devops.post("/projects/demo/stages", json=STAGE)
    await create_tenant(admin, "qa")
    async with make_client(app, await tenant_token(admin, "qa")) as qa:
        assert (await qa.get("/projects/demo")).status_code == 404
        assert (await qa.get("/projects")).json()["items"] == []
        assert (await qa.get("/projects/demo/stages/build")).status_code == 404
        assert (await qa.put("/projects/demo", json={"spec": {}})).status_code == 404
        assert (await qa.delete("/projects/demo")).status_code == 404
    async with make_client(app, await tenant_token(admin, "qa"), tenant="devops") as qa:
        assert (await qa.get("/projects/demo")).status_code == 404
        assert (await qa.post("/projects", json={"metadata": {"name": "p"}})).status_code \
            == 404
    assert (await devops.get("/projects/demo")).status_code == 200


async def test_stale_resource_version_is_409(devops):
    await make_project(devops)
    created = (await devops.post("/projects/demo/stages", json=STAGE)).json()
    stale = created["metadata"]["resourceVersion"]
    changed = {"pod": {**STAGE["spec"]["pod"], "inputs": {}}}
    first = await devops.put("/projects/demo/stages/build", json={
        "metadata": {"resourceVersion": stale}, "spec": changed})
    assert first.status_code == 200, first.text
    second = await devops.put("/projects/demo/stages/build", json={
        "metadata": {"resourceVersion": stale}, "spec": STAGE["spec"]})
    assert second.status_code == 409
    assert second.json()["reason"] == "Conflict"
