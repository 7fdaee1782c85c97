"""The pure parts of the v1.2 routes: which files are Dockerfiles, which resource types an
operation selects, and how a stage pod is shown among the working pods."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cyclone.api import keys
from cyclone.engine.core.tenancy import OPENED_PREFIX
from cyclone.server.crosstenant import clusters_to_dial, project_objects, running_pods
from cyclone.server.scmrepos import is_dockerfile
from cyclone.server.templates import with_operation


def test_dockerfiles_are_recognised_by_their_name_in_any_folder():
    assert all(map(is_dockerfile, ["Dockerfile", "a/b/Dockerfile", "Dockerfile.prod",
                                   "web/app.Dockerfile", "dockerfile"]))
    assert not any(map(is_dockerfile, ["Dockerfile/readme.md", "docs/dockerfile-notes.md",
                                       "Dockerfiles", "mydockerfile"]))


def test_the_operation_filter_keeps_the_types_that_declare_it():
    types = [{"metadata": {"name": "git"}, "spec": {"operations": ["pull"]}},
             {"metadata": {"name": "image"}, "spec": {"operations": ["push"]}},
             {"metadata": {"name": "http"}, "spec": {"operations": ["pull", "push"]}},
             {"metadata": {"name": "odd"}, "spec": {}}]
    assert [t["metadata"]["name"] for t in with_operation(types, "push")] == ["image", "http"]
    assert with_operation(types, None) == types


def pod(name: str, phase: str, tenant: str | None = "acme", **meta: object) -> dict:
    labels = {keys.LABEL_PROJECT: "p", keys.LABEL_WORKFLOW: "w",
              keys.LABEL_WORKFLOWRUN: "r", keys.LABEL_STAGE: "s"}
    if tenant:
        labels[keys.LABEL_TENANT] = tenant
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels,
                         "annotations": {keys.ANNOTATION_META_NAMESPACE: "cyclone-other"},
                         "creationTimestamp": "2026-01-01T00:00:00Z", **meta},
            "status": {"phase": phase}}


def test_working_pods_are_the_unfinished_ones_with_their_tenant_and_age():
    now = datetime(2026, 1, 1, 0, 2, 5, tzinfo=UTC)
    pods = [pod("run", "Running"), pod("wait", "Pending"), pod("done", "Succeeded"),
            pod("gone", "Running", deletionTimestamp="2026-01-01T00:01:00Z"),
            pod("legacy", "Running", tenant=None)]
    items = running_pods(pods, "c1", now, None)
    assert [(i["metadata"]["name"], i["tenant"]) for i in items] == [
        ("run", "acme"), ("wait", "acme"), ("legacy", "other")]
    assert items[0] | {"metadata": None} == {
        "metadata": None, "cluster": "c1", "tenant": "acme", "project": "p", "workflow": "w",
        "workflowrun": "r", "stage": "s", "phase": "Running", "ageSeconds": 125}
    assert [i["metadata"]["name"] for i in running_pods(pods, "c1", now, "other")] == [
        "legacy"]


def test_a_tenants_working_pods_are_looked_for_in_the_control_cluster_and_its_own_clusters():
    def ec(name: str, *openers: str) -> dict:
        return {"metadata": {"name": name, "annotations": {
            f"{OPENED_PREFIX}{tenant}": json.dumps([
                {"integration": "c", "namespace": f"{tenant}-work", "pvc": "p"}])
            for tenant in openers}}}

    ecs = [ec(keys.CONTROL_CLUSTER_NAME), ec("acme-prod", "acme"), ec("shared", "acme", "bob"),
           ec("spare")]
    assert [e["metadata"]["name"] for e in clusters_to_dial("bob", ecs)] == [
        keys.CONTROL_CLUSTER_NAME, "shared"]
    assert clusters_to_dial(None, ecs) == ecs


def test_admin_lists_leave_out_templates_and_namespaces_of_no_tenant():
    def obj(namespace: str, **labels: str) -> dict:
        return {"metadata": {"name": "x", "namespace": namespace, "labels": labels}}

    found = project_objects([obj("cyclone-a"), obj("cyclone-a", **{
        keys.LABEL_STAGE_TEMPLATE: "true"}), obj("kube-system"), obj("cyclone-b")],
        {"cyclone-a": "a", "cyclone-b": "b"})
    assert [o["metadata"]["labels"][keys.LABEL_TENANT] for o in found] == ["a", "b"]


async def test_working_pods_name_an_execution_cluster_that_cannot_be_reached(tmp_path):
    import httpx

    from cyclone.kube import errors
    from cyclone.kube.embedded import EmbeddedCluster
    from cyclone.server import create_app

    async def unreachable(source: dict):
        raise errors.Unavailable(f"{source['clusterName']}: connection refused")

    cluster = EmbeddedCluster(tmp_path / "cluster.db", poll_interval=0.01)
    await cluster.start()
    try:
        app = create_app(cluster=cluster, data_dir=tmp_path / "data", admin_token="t",
                         clusters=unreachable, provisioning=False)
        async with app.router.lifespan_context(app):
            await cluster.create({"apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
                                  "metadata": {"name": "far"},
                                  "spec": {"credential": {"server": "https://far:6443"}}})
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://cyclone.test/apis/v1alpha1",
                                         headers={"Authorization": "Bearer t"}) as admin:
                answer = await admin.get("/workingpods")
    finally:
        await cluster.close()
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"]["unreachable"] == ["far"]


async def test_working_pods_include_a_remote_execution_clusters_stage_pods(tmp_path):
    import httpx

    from cyclone.kube.embedded import EmbeddedCluster
    from cyclone.server import create_app

    control = EmbeddedCluster(tmp_path / "control.db", poll_interval=0.01)
    remote = EmbeddedCluster(tmp_path / "remote.db", poll_interval=0.01)
    await control.start()
    await remote.start()
    asked: list[dict] = []

    async def lookup(source: dict) -> EmbeddedCluster:
        asked.append(source)
        return remote

    try:
        app = create_app(cluster=control, data_dir=tmp_path / "data", admin_token="t",
                         clusters=lookup, provisioning=False)
        async with app.router.lifespan_context(app):
            await control.create({"apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
                                  "metadata": {"name": "far"},
                                  "spec": {"credential": {"server": "https://far:6443"}}})
            await remote.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": "acme-work"}})
            remote_pod = pod("far-pod", "Running")
            remote_pod["metadata"]["namespace"] = "acme-work"
            remote_pod.update(apiVersion="v1", kind="Pod", spec={
                "containers": [{"name": "main", "image": "busybox"}]})
            remote_pod["metadata"]["labels"].update({
                keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
                keys.LABEL_POD_KIND: keys.POD_KIND_WORKLOAD})
            await remote.create(remote_pod)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://cyclone.test/apis/v1alpha1",
                                         headers={"Authorization": "Bearer t"}) as admin:
                answer = await admin.get("/workingpods")
    finally:
        await control.close()
        await remote.close()
    assert answer.status_code == 200, answer.text
    assert [(i["cluster"], i["metadata"]["name"], i["tenant"])
            for i in answer.json()["items"]] == [("far", "far-pod", "acme")]
    assert asked == [{"clusterName": "far", "credential": {"server": "https://far:6443"}}]
