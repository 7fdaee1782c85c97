"""The Cyclone v1.2 routes on a live server beside the engine, on the embedded cluster and on
a real kube-apiserver: the admin lists across tenants, the stage pods running now, a
tenant's execution contexts, the PVC watchdog's start and stop, the Dockerfiles of a
repository, updating a run, `dryrun` on create and update (tenants and integrations
too), the `operation` filter of resource types
and the cleanup of finished runs' data. Tenant `a` is the default tenant (its runs
execute), `b` a second tenant holding only its own token and attacking `a`'s names."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from engine.harness import BACKENDS
from engine.served import served_env
from support.sandboxes import kill_containers_under
from triggers.scm_standin import scm_stand_in

from cyclone.api import keys
from cyclone.api.credentials import MASK
from cyclone.engine.core.phases import is_terminal
from cyclone.engine.core.tenancy import OPENED_PREFIX
from cyclone.kube import errors, kinds
from cyclone.server.integration_records import spec_of_secret
from cyclone.server.watchdog import ANNOTATION_WATCHER, watchdog_pod_name

pytestmark = pytest.mark.asyncio(loop_scope="module")
API = "/apis/v1alpha1"
P = "/projects/v12"
W = f"{P}/workflows/ci"
SLOW = f"{P}/workflows/slow"
TENANT_LABEL = keys.LABEL_TENANT


@dataclass
class World:
    backend: str
    admin: httpx.AsyncClient
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    b_name: str
    cluster: object
    run: dict
    """A succeeded run of `a`'s workflow `ci` (collected only when asked: the GC delay is
    an hour)."""


def expect(response: httpx.Response, *codes: int) -> dict:
    assert response.status_code in codes, (response.request.method, str(response.request.url),
                                           response.status_code, response.text)
    return response.json() if response.content else {}


def stage(name: str, script: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"pod": {"spec": {"containers": [{
        "name": "main", "image": "busybox", "command": ["sh", "-c", script],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                      "limits": {"cpu": "100m", "memory": "64Mi"}}}]}}}}


async def flow(http: httpx.AsyncClient, project: str, workflow: str, script: str) -> None:
    expect(await http.post("/projects", json={"metadata": {"name": project}}), 201, 409)
    expect(await http.post(f"/projects/{project}/stages", json=stage(workflow, script)), 201)
    expect(await http.post(f"/projects/{project}/workflows", json={
        "metadata": {"name": workflow}, "spec": {"stages": [{"name": workflow}]}}), 201)


async def finished(http: httpx.AsyncClient, path: str, within: float = 90) -> dict:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        run = expect(await http.get(path), 200)
        if is_terminal(((run.get("status") or {}).get("overall") or {}).get("phase")):
            return run
        assert asyncio.get_running_loop().time() < deadline, run.get("status")
        await asyncio.sleep(0.1)


async def until(check, within: float = 60, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + within
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, f"{what} never held"
        await asyncio.sleep(0.1)
    return found


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def world(request, tmp_path_factory) -> AsyncIterator[World]:
    data_dir = tmp_path_factory.mktemp(f"v12-{request.param}")
    async with contextlib.AsyncExitStack() as stack:
        served = await stack.enter_async_context(
            served_env(data_dir, request.param, gc_delay_seconds=3600))
        base = f"{served.base_url}{API}"

        def client(token: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"})

        admin = await stack.enter_async_context(client(served.admin_token))
        a_token = expect(await admin.post(f"/tenants/{keys.DEFAULT_TENANT}/tokens",
                                          json={"description": "a"}), 201)["token"]
        b_name = f"v12b{secrets.token_hex(3)}"
        expect(await admin.post("/tenants", json={
            "metadata": {"name": b_name},
            "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}), 201)
        b_token = expect(await admin.post(f"/tenants/{b_name}/tokens",
                                          json={"description": "b"}), 201)["token"]
        a = await stack.enter_async_context(client(a_token))
        b = await stack.enter_async_context(client(b_token))
        await flow(a, "v12", "ci", "echo built")
        await flow(b, "v12b", "ci", "echo b")
        run = expect(await a.post(f"{W}/workflowruns", json={"metadata": {"name": "r1"}}),
                     201)
        done = await finished(a, f"{W}/workflowruns/r1")
        assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
        try:
            yield World(request.param, admin, a, b, b_name, served.env.cluster, run)
        finally:
            with contextlib.suppress(httpx.HTTPError):
                await admin.delete(f"/tenants/{b_name}")
    kill_containers_under(data_dir)


# -- Admin lists across tenants -----------------------------------------------------------

async def test_the_admin_lists_every_tenants_objects_with_their_tenant(world: World):
    for kind, name in (("workflows", "ci"), ("stages", "ci"), ("workflowruns", "r1")):
        listed = expect(await world.admin.get(f"/{kind}", params={
            "filter": f"{keys.LABEL_PROJECT}=v12"}), 200)
        tenants = {i["metadata"]["labels"][TENANT_LABEL] for i in listed["items"]}
        assert tenants == {keys.DEFAULT_TENANT}, (kind, listed)
        assert name in {i["metadata"]["name"] for i in listed["items"]}
        assert listed["metadata"]["total"] == len(listed["items"])
    both = expect(await world.admin.get("/workflows", params={"filter": "name=ci"}), 200)
    assert {keys.DEFAULT_TENANT, world.b_name} <= {
        i["metadata"]["labels"][TENANT_LABEL] for i in both["items"]}
    only_b = expect(await world.admin.get("/stages", params={
        "filter": f"{TENANT_LABEL}={world.b_name}"}), 200)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in only_b["items"]] == [
        (f"cyclone-{world.b_name}", "ci")]
    page = expect(await world.admin.get("/workflows", params={"limit": 1, "sort": "name",
                                                              "ascending": True}), 200)
    assert page["metadata"]["itemsLength"] == 1 and page["metadata"]["total"] >= 2
    for kind in ("resources", "workflowtriggers"):
        expect(await world.admin.get(f"/{kind}"), 200)


async def test_the_admin_list_of_triggers_masks_their_webhook_secret(world: World):
    expect(await world.b.post("/projects/v12b/workflows/ci/workflowtriggers", json={
        "metadata": {"name": "on-push"}, "spec": {"type": "SCM", "scm": {
            "repo": "owner/repo", "push": {"enabled": True},
            "secret": "b-webhook-secret"}}}), 201)
    listed = await world.admin.get("/workflowtriggers", params={"filter": "name=on-push"})
    assert listed.status_code == 200 and "b-webhook-secret" not in listed.text
    [trigger] = listed.json()["items"]
    assert trigger["spec"]["scm"]["secret"] == MASK
    assert trigger["metadata"]["labels"][TENANT_LABEL] == world.b_name


async def test_a_tenant_token_cannot_read_the_admin_lists(world: World):
    for kind in ("workflows", "stages", "resources", "workflowruns", "workflowtriggers"):
        answer = await world.b.get(f"/{kind}")
        assert answer.status_code == 403, (kind, answer.text)
        assert "admin" in answer.json()["message"]


# -- Execution contexts and the PVC watchdog -----------------------------------------------

async def test_a_tenant_sees_its_execution_contexts_and_only_its_own(world: World):
    b, work = world.b, f"cyclone-{world.b_name}-work"
    expect(await b.post("/integrations", json={
        "metadata": {"name": "home"},
        "spec": {"type": "Cluster", "cluster": {"isControlCluster": True,
                                                 "namespace": work}}}), 201)
    expect(await b.put("/integrations/home/opencluster"), 200)
    mine = expect(await b.get(f"/tenants/{world.b_name}/executioncontexts"), 200)
    contexts = {(i["cluster"], i["namespace"], i["pvc"], i["integration"])
                for i in mine["items"]}
    assert contexts == {
        (keys.CONTROL_CLUSTER_NAME, f"cyclone-{world.b_name}",
         keys.tenant_pvc_name(world.b_name), None),
        (keys.CONTROL_CLUSTER_NAME, work,
         keys.tenant_pvc_name(world.b_name), "home")}
    by_admin = expect(await world.admin.get(f"/tenants/{world.b_name}/executioncontexts"), 200)
    assert by_admin["items"] == mine["items"]
    theirs = await b.get(f"/tenants/{keys.DEFAULT_TENANT}/executioncontexts")
    assert theirs.status_code == 404, theirs.text


async def test_a_home_also_opened_as_a_cluster_is_listed_once_with_its_integration(
        world: World):
    c_name = f"v12c{secrets.token_hex(3)}"
    expect(await world.admin.post("/tenants", json={
        "metadata": {"name": c_name}, "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}), 201)
    try:
        c_token = expect(await world.admin.post(f"/tenants/{c_name}/tokens", json={}),
                         201)["token"]
        c = {"Authorization": f"Bearer {c_token}"}
        expect(await world.admin.post("/integrations", headers=c, json={
            "metadata": {"name": "at-home"},
            "spec": {"type": "Cluster", "cluster": {"isControlCluster": True,
                                                     "namespace": f"cyclone-{c_name}"}}}), 201)
        expect(await world.admin.put("/integrations/at-home/opencluster", headers=c), 200)
        listed = expect(await world.admin.get(f"/tenants/{c_name}/executioncontexts",
                                              headers=c), 200)
        assert [(i["metadata"]["name"], i["pvc"], i["integration"]) for i in listed["items"]] == [
            (f"{keys.CONTROL_CLUSTER_NAME}/cyclone-{c_name}", keys.tenant_pvc_name(c_name),
             "at-home")]
        assert listed["metadata"]["total"] == 1
    finally:
        with contextlib.suppress(httpx.HTTPError):
            await world.admin.delete(f"/tenants/{c_name}")


async def test_a_stage_name_taken_in_another_project_is_refused_naming_that_project(
        world: World):
    expect(await world.a.post("/projects", json={"metadata": {"name": "v12other"}}), 201)
    for params in ({}, {"dryrun": "true"}):
        taken = await world.a.post("/projects/v12other/stages", params=params,
                                   json=stage("ci", "echo other"))
        assert taken.status_code == 409, taken.text
        assert taken.json()["message"] == (
            "stage 'ci' already exists in project 'v12'; stage names are unique per tenant")
    again = await world.a.post(f"{P}/stages", json=stage("ci", "echo again"))
    assert again.status_code == 409 and again.json()["message"] == "stage 'ci' already exists"


async def test_a_stopped_pvc_watchdog_stays_stopped_until_started(world: World):
    b, namespace = world.b, f"cyclone-{world.b_name}-work"
    pod = watchdog_pod_name(world.b_name)

    async def watchdog() -> dict | None:
        listed = await world.cluster.list(kinds.POD, namespace)
        return next((p for p in listed.items if p["metadata"]["name"] == pod), None)

    await until(watchdog, what="the watchdog pod")
    stopped = expect(await b.put("/integrations/home/pvcwatcher", params={"action": "stop"}),
                     200)
    assert stopped["pvcWatcher"] == "stopped" and stopped["workloadNamespace"] == namespace
    await until(lambda: _absent(watchdog), what="the watchdog pod gone")
    expect(await b.put("/integrations/home/opencluster"), 200)
    shown = expect(await b.get("/integrations/home"), 200)
    assert shown["metadata"]["annotations"][ANNOTATION_WATCHER] == "stopped"
    others = {k: v for k, v in shown["metadata"]["annotations"].items()
              if k != ANNOTATION_WATCHER}
    for given in (others, {**others, ANNOTATION_WATCHER: ""}):
        expect(await b.put("/integrations/home", json={
            "metadata": {"name": "home", "annotations": given},
            "spec": shown["spec"]}), 200)
        kept = expect(await b.get("/integrations/home"), 200)
        assert kept["metadata"]["annotations"][ANNOTATION_WATCHER] == "stopped"
    expect(await b.put("/integrations/home/opencluster"), 200)
    assert await watchdog() is None
    started = expect(await b.put("/integrations/home/pvcwatcher", params={"action": "start"}),
                     200)
    assert started["pvcWatcher"] == "started"
    await until(watchdog, what="the watchdog pod back")


async def _absent(find) -> bool:
    return await find() is None


async def test_the_pvc_watchdog_route_refuses_bad_input_and_other_tenants(world: World):
    bad = await world.b.put("/integrations/home/pvcwatcher", params={"action": "pause"})
    assert bad.status_code == 422 and "action" in bad.text, bad.text
    expect(await world.a.post("/integrations", json={
        "metadata": {"name": "closed"},
        "spec": {"type": "Cluster", "cluster": {"isControlCluster": True}}}), 201)
    closed = await world.a.put("/integrations/closed/pvcwatcher", params={"action": "stop"})
    assert closed.status_code == 409 and "open it first" in closed.text, closed.text
    theirs = await world.a.put("/integrations/home/pvcwatcher", params={"action": "stop"})
    assert theirs.status_code == 404, theirs.text
    named = await world.a.put("/integrations/home/pvcwatcher", params={"action": "stop"},
                              headers={"X-Tenant": world.b_name})
    assert named.status_code == 404, named.text


# -- Stage pods running now ---------------------------------------------------------------

async def test_working_pods_show_a_running_stage_to_the_admin_and_its_tenant_only(
        world: World):
    await flow(world.a, "v12", "slow", "sleep 60")
    expect(await world.a.post(f"{SLOW}/workflowruns", json={"metadata": {"name": "s1"}}), 201)
    try:
        async def running() -> list[dict]:
            listed = expect(await world.admin.get("/workingpods"), 200)
            return [i for i in listed["items"]
                    if i["workflowrun"] == "s1" and i["phase"] == "Running"]

        [pod] = await until(running, what="the running stage pod")
        assert (pod["tenant"], pod["project"], pod["workflow"], pod["stage"],
                pod["cluster"]) == (keys.DEFAULT_TENANT, "v12", "slow", "slow",
                                    keys.CONTROL_CLUSTER_NAME)
        assert pod["ageSeconds"] >= 0
        own = expect(await world.a.get("/workingpods"), 200)
        assert pod["metadata"]["name"] in {i["metadata"]["name"] for i in own["items"]}
        for answer in (await world.b.get("/workingpods"),
                       await world.admin.get("/workingpods",
                                             headers={"X-Tenant": world.b_name})):
            assert answer.status_code == 200, answer.text
            assert all(i["tenant"] == world.b_name for i in answer.json()["items"])
        named = await world.b.get("/workingpods", headers={"X-Tenant": keys.DEFAULT_TENANT})
        assert named.status_code == 404, named.text
    finally:
        expect(await world.a.put(f"{SLOW}/workflowruns/s1/stop", params={"force": True}), 200)


async def test_a_tenant_token_never_learns_of_another_tenants_execution_cluster(world: World):
    name = f"acme-secret-{secrets.token_hex(3)}"
    await world.cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "ExecutionCluster", "metadata": {
            "name": name, "annotations": {f"{OPENED_PREFIX}acme": json.dumps([
                {"integration": "prod", "namespace": "acme-work", "pvc": "acme"}])}},
        "spec": {"credential": {"server": "https://127.0.0.1:1",
                                "tlsClientConfig": {"caData": "%%% not base64"}}}})
    try:
        listed = expect(await world.admin.get("/workingpods"), 200)
        assert name in listed["metadata"]["unreachable"]
        for answer in (await world.b.get("/workingpods"), await world.a.get("/workingpods"),
                       await world.admin.get("/workingpods",
                                             headers={"X-Tenant": world.b_name})):
            assert answer.status_code == 200 and name not in answer.text, answer.text
    finally:
        await world.cluster.delete(kinds.EXECUTION_CLUSTER, name)


# -- Updating a run -------------------------------------------------------------------------

async def test_a_run_update_changes_its_labels_and_annotations_only(world: World):
    path = f"{W}/workflowruns/r1"
    run = expect(await world.a.get(path), 200)
    meta = run["metadata"]
    started_by = meta["annotations"][keys.ANNOTATION_STARTED_BY]
    updated = expect(await world.a.put(path, json={"metadata": {
        "labels": {"team": "web"}, "annotations": {keys.ANNOTATION_DESCRIPTION: "nightly"}}}),
        200)
    labels, annotations = updated["metadata"]["labels"], updated["metadata"]["annotations"]
    assert labels["team"] == "web" and labels[keys.LABEL_PROJECT] == "v12"
    assert labels[keys.LABEL_WORKFLOW] == "ci"
    assert annotations[keys.ANNOTATION_DESCRIPTION] == "nightly"
    assert annotations[keys.ANNOTATION_STARTED_BY] == started_by
    assert keys.ANNOTATION_STAGE_SPECS in annotations
    assert updated["status"]["overall"]["phase"] == "Succeeded"
    assert updated["spec"] == run["spec"]

    spec = {**run["spec"], "timeout": "5m"}
    refused = await world.a.put(path, json={"metadata": {}, "spec": spec})
    assert refused.status_code == 409 and "spec.timeout" in refused.json()["message"]
    forged = await world.a.put(path, json={"metadata": {"annotations": {
        keys.ANNOTATION_STARTED_BY: "the admin via the web UI"}}})
    assert forged.status_code == 409, forged.text
    assert keys.ANNOTATION_STARTED_BY in forged.json()["message"]
    moved = await world.a.put(path, json={"metadata": {"labels": {
        keys.LABEL_PROJECT: "elsewhere"}}})
    assert moved.status_code == 409, moved.text
    kept = expect(await world.a.get(path), 200)["metadata"]
    assert kept["annotations"][keys.ANNOTATION_STARTED_BY] == started_by
    assert kept["labels"]["team"] == "web"

    for attacked in (path, "/projects/v12b/workflows/ci/workflowruns/r1"):
        attack = await world.b.put(attacked, json={"metadata": {"labels": {"owned": "b"}}})
        assert attack.status_code == 404, attack.text
    named = await world.b.put(path, json={"metadata": {"labels": {"owned": "by-b"}}},
                              headers={"X-Tenant": keys.DEFAULT_TENANT})
    assert named.status_code == 404, named.text
    assert "owned" not in expect(await world.a.get(path), 200)["metadata"]["labels"]


# -- dryrun on create and the operation filter ---------------------------------------------

async def test_dryrun_checks_as_create_does_and_stores_nothing(world: World):
    answer = expect(await world.a.post(f"{P}/stages", params={"dryrun": "true"},
                                       json=stage("probe", "true")), 201)
    assert answer["metadata"]["name"] == "probe"
    assert (await world.a.get(f"{P}/stages/probe")).status_code == 404
    broken = {"metadata": {"name": "broken"}, "spec": {"pod": {"spec": {}}}}
    as_create = await world.a.post(f"{P}/stages", json=broken)
    as_dry = await world.a.post(f"{P}/stages", params={"dryrun": "true"}, json=broken)
    assert as_dry.status_code == as_create.status_code == 422
    assert as_dry.json()["message"] == as_create.json()["message"]
    taken = await world.a.post(f"{P}/stages", params={"dryrun": "true"},
                               json=stage("ci", "true"))
    assert taken.status_code == 409, taken.text
    before = expect(await world.a.get(f"{W}/workflowruns"), 200)["metadata"]["total"]
    run = expect(await world.a.post(f"{W}/workflowruns", params={"dryrun": "true"},
                                    json={"metadata": {"name": "dry"}}), 201)
    assert run["spec"]["executionContext"]["namespace"]
    assert (await world.a.get(f"{W}/workflowruns/dry")).status_code == 404
    assert expect(await world.a.get(f"{W}/workflowruns"), 200)["metadata"]["total"] == before
    bad = await world.a.post(f"{P}/stages", params={"dryrun": "maybe"},
                             json=stage("probe", "true"))
    assert bad.status_code == 422 and "dryrun" in bad.text, bad.text


async def test_resource_types_filter_by_operation(world: World):
    every = expect(await world.a.get("/resourcetypes"), 200)["items"]
    for operation in ("pull", "push"):
        listed = expect(await world.a.get("/resourcetypes",
                                          params={"operation": operation}), 200)["items"]
        assert listed, operation
        assert all(operation in t["spec"]["operations"] for t in listed)
        assert {t["metadata"]["name"] for t in listed} == {
            t["metadata"]["name"] for t in every
            if operation in (t["spec"].get("operations") or [])}
    bad = await world.a.get("/resourcetypes", params={"operation": "delete"})
    assert bad.status_code == 422 and "operation" in bad.text, bad.text


def scm_integration(name: str, token: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"type": "SCM", "scm": {
        "type": "GitHub", "server": "https://github.com", "user": "bot", "token": token}}}


async def stored_token(world: World, name: str) -> str | None:
    """The token the integration's Secret holds, or None when there is no Secret."""
    try:
        secret = await world.cluster.get(kinds.SECRET, name,
                                         keys.tenant_namespace(keys.DEFAULT_TENANT))
    except errors.NotFound:
        return None
    return spec_of_secret(secret)["scm"]["token"]


async def test_dryrun_of_an_integration_checks_it_and_stores_no_secret(world: World):
    a = world.a
    answer = expect(await a.post("/integrations", params={"dryrun": "true"},
                                 json=scm_integration("dry-scm", "dry-token-value")), 201)
    assert answer["metadata"]["name"] == "dry-scm" and answer["spec"]["scm"]["token"] == MASK
    assert await stored_token(world, "dry-scm") is None
    assert (await a.get("/integrations/dry-scm")).status_code == 404
    broken = {"metadata": {"name": "broken"}, "spec": {"type": "SCM"}}
    as_create = await a.post("/integrations", json=broken)
    as_dry = await a.post("/integrations", params={"dryRun": "All"}, json=broken)
    assert as_dry.status_code == as_create.status_code == 422, as_dry.text
    assert as_dry.json()["message"] == as_create.json()["message"]
    expect(await a.post("/integrations", json=scm_integration("kept", "old-token")), 201)
    taken = await a.post("/integrations", params={"dryrun": "true"},
                         json=scm_integration("kept", "x"))
    assert taken.status_code == 409 and "kept" in taken.json()["message"], taken.text
    changed = expect(await a.put("/integrations/kept", params={"dryRun": "All"},
                                 json=scm_integration("kept", "new-token", team="web")), 200)
    assert changed["metadata"]["labels"]["team"] == "web"
    assert changed["spec"]["scm"]["token"] == MASK and "new-token" not in str(changed)
    assert await stored_token(world, "kept") == "old-token"
    assert "team" not in expect(await a.get("/integrations/kept"), 200)["metadata"]["labels"]
    retyped = await a.put("/integrations/kept", params={"dryrun": "true"}, json={
        "metadata": {"name": "kept"}, "spec": {"type": "General", "general": []}})
    assert retyped.status_code == 400 and "type" in retyped.json()["message"]
    theirs = await world.b.put("/integrations/kept", params={"dryrun": "true"},
                               json=scm_integration("kept", "stolen"))
    assert theirs.status_code == 404, theirs.text


async def test_dryrun_of_a_tenant_checks_it_and_creates_nothing(world: World):
    admin, name = world.admin, f"dry{secrets.token_hex(3)}"
    body = {"metadata": {"name": name}, "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}
    answer = expect(await admin.post("/tenants", params={"dryRun": "All"}, json=body), 201)
    assert answer["metadata"]["name"] == name
    assert answer["spec"]["persistentVolumeClaim"]["size"] == "1Gi"
    assert (await admin.get(f"/tenants/{name}")).status_code == 404
    namespaces = await world.cluster.list(kinds.NAMESPACE)
    assert not [n for n in namespaces.items if name in n["metadata"]["name"]]
    bad = {**body, "spec": {"resourceQuota": {"limits.cpu": "lots"}}}
    as_create = await admin.post("/tenants", json=bad)
    as_dry = await admin.post("/tenants", params={"dryrun": "true"}, json=bad)
    assert as_dry.status_code == as_create.status_code == 422, as_dry.text
    assert as_dry.json()["message"] == as_create.json()["message"]
    taken = await admin.post("/tenants", params={"dryrun": "true"},
                             json={"metadata": {"name": world.b_name}})
    assert taken.status_code == 409, taken.text
    stored = expect(await admin.get(f"/tenants/{world.b_name}"), 200)
    edited = {"metadata": {"name": world.b_name, "annotations": {"team": "web"}},
              "spec": stored["spec"]}
    dry = expect(await admin.put(f"/tenants/{world.b_name}", params={"dryRun": "All"},
                                 json=edited), 200)
    assert dry["metadata"]["annotations"]["team"] == "web"
    after = expect(await admin.get(f"/tenants/{world.b_name}"), 200)
    assert "team" not in after["metadata"]["annotations"]
    for method in ("post", "put"):
        refused = await getattr(world.b, method)(
            "/tenants" if method == "post" else f"/tenants/{world.b_name}",
            params={"dryrun": "true"}, json=edited)
        assert refused.status_code == 403, (method, refused.text)


# -- Dockerfiles of a repository -----------------------------------------------------------

FILES = ("Dockerfile", "README.md", "deploy/Dockerfile.prod", "web/app.Dockerfile",
         "docs/dockerfile-notes.md")


def tree_answer(method: str, path: str) -> object:
    """GitHub's and GitLab's tree APIs over one repository."""
    if path == "/api/v3/repos/octo/app":
        return {"default_branch": "main"}
    if path.startswith("/api/v3/repos/octo/app/git/trees/main"):
        return {"tree": [{"path": f, "type": "blob"} for f in FILES]
                + [{"path": "deploy", "type": "tree"}], "truncated": False}
    if path.startswith("/api/v4/projects/group%2Fapp/repository/tree"):
        return [{"path": f, "type": "blob"} for f in FILES]
    return {}


async def test_dockerfiles_of_github_and_gitlab_repositories(world: World):
    async with scm_stand_in() as stand_in:
        stand_in.answer = tree_answer  # type: ignore[method-assign]
        for name, kind in (("gh", "GitHub"), ("gl", "GitLab")):
            expect(await world.a.post("/integrations", json={
                "metadata": {"name": name},
                "spec": {"type": "SCM", "scm": {"type": kind, "server": stand_in.url,
                                                "token": f"{name}-secret"}}}), 201)
        expected = ["Dockerfile", "deploy/Dockerfile.prod", "web/app.Dockerfile"]
        github = expect(await world.a.get("/integrations/gh/scmrepos/octo/app/dockerfiles"),
                        200)
        assert [i["path"] for i in github["items"]] == expected
        gitlab = expect(await world.a.get("/integrations/gl/scmrepos/group/app/dockerfiles"),
                        200)
        assert [i["path"] for i in gitlab["items"]] == expected
        sent = [r for r in stand_in.requests if "/git/trees/" in r.path]
        assert sent and sent[0].headers["authorization"] == "Bearer gh-secret"
        seen = len(stand_in.requests)
        attack = await world.b.get("/integrations/gh/scmrepos/octo/app/dockerfiles")
        assert attack.status_code == 404, attack.text
        assert len(stand_in.requests) == seen


# -- Cleaning the tenant PVC -----------------------------------------------------------------

async def test_storage_cleanup_collects_finished_runs_now_and_only_the_tenants(world: World):
    nothing = expect(await world.b.post("/storage/cleanup"), 202)
    assert nothing == {"tenant": world.b_name, "workflowruns": []}
    run = expect(await world.a.get(f"{W}/workflowruns/r1"), 200)
    assert not run["status"].get("cleaned")
    started = expect(await world.a.post("/storage/cleanup"), 202)
    assert started["tenant"] == keys.DEFAULT_TENANT and "r1" in started["workflowruns"]

    async def cleaned() -> bool:
        got = expect(await world.a.get(f"{W}/workflowruns/r1"), 200)
        return bool(got["status"].get("cleaned"))

    await until(cleaned, within=60, what="r1 cleaned")
    again = expect(await world.a.post("/storage/cleanup"), 202)
    assert "r1" not in again["workflowruns"]


async def test_the_new_routes_are_in_the_openapi_document(world: World):
    async with httpx.AsyncClient(base_url=str(world.admin.base_url).removesuffix(
            API + "/").removesuffix(API)) as root:
        paths = expect(await root.get("/openapi.json"), 200)["paths"]
    expected = {
        ("get", "/workflows"), ("get", "/stages"), ("get", "/resources"),
        ("get", "/workflowruns"), ("get", "/workflowtriggers"), ("get", "/workingpods"),
        ("get", "/tenants/{tenant}/executioncontexts"), ("post", "/storage/cleanup"),
        ("put", "/integrations/{integration}/pvcwatcher"),
        ("get", "/integrations/{integration}/scmrepos/{repo}/dockerfiles"),
        ("put", "/projects/{project}/workflows/{workflow}/workflowruns/{name}"),
        ("post", "/projects/{project}/cleancachetasks"),
        ("get", "/projects/{project}/cleancachetasks/{task}"), ("get", "/settings"),
    }
    for method, path in expected:
        operation = paths[API + path][method]
        assert operation.get("summary"), (method, path)
    for method, path in (("post", "/integrations"), ("put", "/integrations/{integration}"),
                         ("post", "/tenants"), ("put", "/tenants/{tenant}")):
        names = {p["name"] for p in paths[API + path][method].get("parameters", [])}
        assert {"dryRun", "dryrun"} <= names, (method, path, names)
