"""The v1.2 routes where a CLI user looks for them, against a live server: `get KIND -A`
(every tenant's objects, admin), `get workingpods` (scoped to the context's tenant, every
tenant's with `-A`), `get executioncontexts`, `integration
stop-pvc-watcher|start-pvc-watcher`, `integration dockerfiles`, `storage cleanup`,
`get resourcetypes --operation`, `apply --dry-run=server` of tenants and integrations, and
`apply` (CLI and SDK) of a name another project of the tenant holds."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from cli.conftest import ADMIN_TOKEN
from cyclone.api import keys
from cyclone.cli.config import save_instance_context
from cyclone.engine.core.gcpod import ANNOTATION_COLLECT_NOW
from cyclone.kube import kinds
from cyclone.sdk import APIError, Client, Stage
from cyclone.server.watchdog import ANNOTATION_WATCHER

API = "/apis/v1alpha1"
A, B = "v12cli-a", "v12cli-b"


def api(url: str, method: str, path: str, token: str = ADMIN_TOKEN, **kwargs) -> dict:
    response = httpx.request(method, f"{url}{API}{path}", timeout=30,
                             headers={"Authorization": f"Bearer {token}"}, **kwargs)
    assert response.status_code < 300, (method, path, response.text)
    return response.json() if response.content else {}


def flow(url: str, token: str, project: str) -> None:
    api(url, "POST", "/projects", token, json={"metadata": {"name": project}})
    api(url, "POST", f"/projects/{project}/stages", token, json={
        "metadata": {"name": "build"}, "spec": {"pod": {"spec": {"containers": [
            {"image": "busybox", "command": ["true"]}]}}}})
    api(url, "POST", f"/projects/{project}/workflows", token, json={
        "metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})


async def finished_run(cluster, namespace: str) -> None:
    await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
        "metadata": {"name": "done", "namespace": namespace,
                     "labels": {keys.LABEL_PROJECT: "pa", keys.LABEL_WORKFLOW: "ci"}},
        "spec": {"workflowRef": {"name": "ci"}}})
    await cluster.patch(kinds.WORKFLOW_RUN, "done", {"status": {"overall": {
        "phase": "Succeeded", "lastTransitionTime": "2026-01-01T00:00:00Z"}}}, namespace,
        subresource="status")


async def stage_pod(cluster, namespace: str) -> None:
    await cluster.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "ci-build-x1", "namespace": namespace, "labels": {
            keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
            keys.LABEL_POD_KIND: keys.POD_KIND_WORKLOAD, keys.LABEL_TENANT: A,
            keys.LABEL_PROJECT: "pa", keys.LABEL_WORKFLOW: "ci",
            keys.LABEL_WORKFLOWRUN: "done", keys.LABEL_STAGE: "build"}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}})


@pytest.fixture(scope="module")
def tokens(live_server) -> dict[str, str]:
    url = live_server.url
    found = {}
    for tenant in (A, B):
        api(url, "POST", "/tenants", json={"metadata": {"name": tenant}, "spec": {
            "persistentVolumeClaim": {"size": "1Gi"}, "allowLocalAddresses": True}})
        found[tenant] = api(url, "POST", f"/tenants/{tenant}/tokens", json={})["token"]
    flow(url, found[A], "pa")
    flow(url, found[B], "pb")
    live_server.call(finished_run(live_server.cluster, f"cyclone-{A}"))
    live_server.call(stage_pod(live_server.cluster, f"cyclone-{A}"))
    api(url, "POST", "/integrations", found[B], json={
        "metadata": {"name": "home"},
        "spec": {"type": "Cluster", "cluster": {"isControlCluster": True}}})
    api(url, "PUT", "/integrations/home/opencluster", found[B])
    return found


def as_tenant(token: str) -> dict:
    return {"CYCLONE_TOKEN": token}


def test_get_all_tenants_lists_every_tenants_workflows_for_the_admin(cyclone, tokens):
    table = cyclone("get", "workflows", "-A")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "TENANT", "PROJECT"]
    assert {tuple(r.split()[:3]) for r in rows} >= {("ci", A, "pa"), ("ci", B, "pb")}
    only_b = cyclone("get", "workflows", "--all-tenants", "-p", "pb", "-o", "json")
    assert [(o["metadata"]["labels"][keys.LABEL_TENANT], o["metadata"]["name"])
            for o in json.loads(only_b.stdout)] == [(B, "ci")]
    refused = cyclone("get", "stages", "-A", env=as_tenant(tokens[B]))
    assert refused.exit_code == 1 and "admin" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    wrong = cyclone("get", "templates", "-A")
    assert wrong.exit_code != 0 and "--all-tenants lists" in wrong.stderr


def test_get_workingpods_shows_a_tenants_stage_pods_to_it_and_the_admin(cyclone, tokens):
    for env in ({}, as_tenant(tokens[A])):
        table = cyclone("get", "workingpods", env=env)
        assert table.exit_code == 0, table.output
        header, *rows = table.stdout.splitlines()
        assert header.split()[:8] == ["NAME", "TENANT", "PROJECT", "WORKFLOW", "RUN", "STAGE",
                                      "PHASE", "CLUSTER"]
        assert [r.split()[:7] for r in rows] == [
            ["ci-build-x1", A, "pa", "ci", "done", "build", "Pending"]]
    theirs = cyclone("get", "workingpods", env=as_tenant(tokens[B]))
    assert theirs.exit_code == 0 and theirs.stdout == ""
    assert "No workingpods found." in theirs.stderr


def test_workingpods_follow_an_up_context_tenant_and_all_tenants_lists_every_one(
        cyclone, tokens, live_server, tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN)
    save_instance_context("up-local", live_server.url, keys.DEFAULT_TENANT, token_file,
                          make_current=True)
    as_up = {"CYCLONE_SERVER": None, "CYCLONE_TOKEN": None}
    scoped = cyclone("get", "workingpods", env=as_up)
    assert scoped.exit_code == 0 and scoped.stdout == "", scoped.output
    every = cyclone("get", "workingpods", "-A", env=as_up)
    assert every.exit_code == 0, every.output
    assert [r.split()[:3] for r in every.stdout.splitlines()] == [
        ["NAME", "TENANT", "PROJECT"], ["ci-build-x1", A, "pa"]]
    named = cyclone("get", "workingpods", "-A", "-p", "pa", "-w", "ci", "-o", "name", env=as_up)
    assert named.stdout == "workingpod/ci-build-x1\n", named.output
    elsewhere = cyclone("get", "workingpods", "--all-tenants", "-p", "pb", env=as_up)
    assert elsewhere.exit_code == 0 and elsewhere.stdout == "", elsewhere.output


def test_get_executioncontexts_lists_the_tenants_own(cyclone, tokens):
    mine = cyclone("get", "executioncontexts", "-o", "json", env=as_tenant(tokens[B]))
    assert mine.exit_code == 0, mine.output
    assert {(c["namespace"], c["integration"]) for c in json.loads(mine.stdout)} == {
        (f"cyclone-{B}", None), (f"cyclone-{B}-worker", "home")}
    other = cyclone("--tenant", A, "get", "executioncontexts", env=as_tenant(tokens[B]))
    assert other.exit_code == 1 and "not found" in other.stderr


def test_the_pvc_watchdog_is_stopped_and_started_from_the_cli(cyclone, tokens, live_server):
    def choice() -> str | None:
        secret = live_server.call(live_server.cluster.get(kinds.SECRET, "home",
                                                          f"cyclone-{B}"))
        return (secret["metadata"].get("annotations") or {}).get(ANNOTATION_WATCHER)

    stopped = cyclone("integration", "stop-pvc-watcher", "home", env=as_tenant(tokens[B]))
    assert stopped.exit_code == 0, stopped.output
    assert stopped.stdout == "integration/home PVC watchdog stopped\n"
    assert choice() == "stopped"
    started = cyclone("integration", "start-pvc-watcher", "home", env=as_tenant(tokens[B]))
    assert started.stdout == "integration/home PVC watchdog started\n" and choice() is None
    theirs = cyclone("integration", "stop-pvc-watcher", "home", env=as_tenant(tokens[A]))
    assert theirs.exit_code == 1 and "not found" in theirs.stderr


def test_storage_cleanup_starts_collecting_the_tenants_finished_runs(cyclone, tokens,
                                                                     live_server):
    nothing = cyclone("storage", "cleanup", env=as_tenant(tokens[B]))
    assert nothing.stdout == f"tenant/{B}: no finished run's data to clean\n"
    started = cyclone("storage", "cleanup", env=as_tenant(tokens[A]))
    assert started.exit_code == 0, started.output
    assert started.stdout == "workflowrun/done cleanup started\n"
    run = live_server.call(live_server.cluster.get(kinds.WORKFLOW_RUN, "done", f"cyclone-{A}"))
    assert run["metadata"]["annotations"][ANNOTATION_COLLECT_NOW] == "true"


@pytest.fixture
def github() -> Iterator[str]:
    """A stand-in of GitHub's API with one repository `octo/app`."""
    answers = {
        "/api/v3/repos/octo/app": {"default_branch": "main"},
        "/api/v3/repos/octo/app/git/trees/main?recursive=1": {"tree": [
            {"path": p, "type": "blob"} for p in ("Dockerfile", "go.mod", "ci/Dockerfile.test")]},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(answers.get(self.path, {})).encode()
            self.send_response(200 if self.path in answers else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_integration_dockerfiles_lists_a_repositorys_dockerfiles(cyclone, tokens, github,
                                                                 live_server):
    api(live_server.url, "POST", "/integrations", tokens[A], json={
        "metadata": {"name": "gh"},
        "spec": {"type": "SCM", "scm": {"type": "GitHub", "server": github, "token": "t"}}})
    listed = cyclone("integration", "dockerfiles", "gh", "octo/app", env=as_tenant(tokens[A]))
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == ["PATH", "Dockerfile", "ci/Dockerfile.test"]
    missing = cyclone("integration", "dockerfiles", "gh", "octo/gone", env=as_tenant(tokens[A]))
    assert missing.exit_code == 1 and len(missing.stderr.strip().splitlines()) == 1


def test_label_and_annotate_change_a_run_but_never_cyclones_records(cyclone, tokens,
                                                                   live_server):
    as_a = as_tenant(tokens[A])
    labeled = cyclone("label", "run", "done", "team=web", "-p", "pa", "-w", "ci", env=as_a)
    assert labeled.exit_code == 0, labeled.output
    assert labeled.stdout == "workflowrun/done labeled\n"
    kept = cyclone("label", "run", "done", "team=api", env=as_a)
    assert kept.exit_code == 1 and "--overwrite" in kept.stderr
    annotated = cyclone("annotate", "workflowrun", "done", f"{keys.ANNOTATION_DESCRIPTION}=x",
                        env=as_a)
    assert annotated.exit_code == 0, annotated.output
    forged = cyclone("annotate", "run", "done", f"{keys.ANNOTATION_STARTED_BY}=the admin",
                     env=as_a)
    assert forged.exit_code == 1 and keys.ANNOTATION_STARTED_BY in forged.stderr
    assert len(forged.stderr.strip().splitlines()) == 1
    workflow = cyclone("label", "workflow", "ci", "tier=1", "-p", "pa", env=as_a)
    assert workflow.exit_code == 0, workflow.output
    run = live_server.call(live_server.cluster.get(kinds.WORKFLOW_RUN, "done", f"cyclone-{A}"))
    assert run["metadata"]["labels"]["team"] == "web"
    assert run["metadata"]["annotations"][keys.ANNOTATION_DESCRIPTION] == "x"
    assert keys.ANNOTATION_STARTED_BY not in run["metadata"]["annotations"]
    theirs = cyclone("label", "run", "done", "owner=b", "-p", "pa", "-w", "ci",
                     env=as_tenant(tokens[B]))
    assert theirs.exit_code == 1 and "not found" in theirs.stderr


def test_get_resourcetypes_filters_by_operation(cyclone, tokens):
    for operation in ("pull", "push"):
        listed = cyclone("get", "resourcetypes", "--operation", operation, "-o", "json")
        assert listed.exit_code == 0, listed.output
        types = json.loads(listed.stdout)
        assert types and all(operation in t["spec"]["operations"] for t in types)
    every = json.loads(cyclone("get", "resourcetypes", "-o", "json").stdout)
    assert {t["metadata"]["name"] for t in types} == {
        t["metadata"]["name"] for t in every if "push" in t["spec"].get("operations", [])}
    for args in (("resourcetypes", "--operation", "delete"), ("stages", "--operation", "pull")):
        refused = cyclone("get", *args)
        assert refused.exit_code == 1 and refused.stderr.startswith("error: --operation")
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_apply_server_dry_run_checks_tenants_and_integrations_storing_nothing(
        cyclone, tokens, tmp_path, live_server):
    manifest = tmp_path / "tenancy.yaml"
    manifest.write_text(
        "kind: Integration\nmetadata: {name: dry-scm}\nspec:\n  type: SCM\n"
        "  scm: {type: GitHub, server: 'https://github.com', token: dry-secret-token}\n"
        "---\nkind: Tenant\nmetadata: {name: dry-tenant}\n"
        "spec: {persistentVolumeClaim: {size: 1Gi}}\n")
    checked = cyclone("apply", "-f", str(manifest), "--dry-run=server")
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines() == ["tenant/dry-tenant created (server dry run)",
                                           "integration/dry-scm created (server dry run)"]
    assert "dry-secret-token" not in checked.output
    for path in ("/tenants/dry-tenant", "/integrations/dry-scm"):
        answer = httpx.get(f"{live_server.url}{API}{path}", timeout=30,
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert answer.status_code == 404, (path, answer.text)
    manifest.write_text(f"kind: Tenant\nmetadata: {{name: {A}}}\n---\n"
                        "kind: Integration\nmetadata: {name: bad}\nspec: {type: SCM}\n")
    refused = cyclone("apply", "-f", str(manifest), "--dry-run=server",
                      env=as_tenant(tokens[A]))
    assert refused.exit_code == 1, refused.output
    assert "doc 1 Tenant/" in refused.stdout and "doc 2 Integration/bad" in refused.stdout


def test_apply_of_a_name_taken_in_another_project_names_that_project(cyclone, tokens,
                                                                      tmp_path, live_server):
    manifest = tmp_path / "taken.yaml"
    manifest.write_text("kind: Project\nmetadata: {name: pz}\n---\nkind: Stage\n"
                        "metadata: {name: build}\nspec:\n  pod:\n    spec:\n"
                        "      containers: [{image: busybox, command: ['true']}]\n")
    refused = cyclone("apply", "-f", str(manifest), "-p", "pz", env=as_tenant(tokens[A]))
    assert refused.exit_code == 1, refused.output
    assert refused.stderr == ("error: Stage 'build': stage 'build' already exists in project "
                              "'pa'; stage names are unique per tenant\n")
    with Client(server=live_server.url, token=tokens[A]) as client, \
            pytest.raises(APIError) as sdk_refused:
        client.apply("pz", Stage("build", image="busybox", command=["true"]))
    assert sdk_refused.value.status == 409
    assert "already exists in project 'pa'" in sdk_refused.value.message
