"""Tenant `b` attacks tenant `a` through the engine: it aims runs at a's namespace and PVC,
reads a's Secrets by `${secrets}` and `secretKeyRef`, and asks for pod features that escape
a pod — through the REST API and by writing Stages and WorkflowRuns straight into the
cluster as a kubectl user would. Every attempt is refused before anything is read or
created; a feature is admitted only once an admin allows it for that tenant."""

from __future__ import annotations

import asyncio

from cyclone.api import keys
from cyclone.engine.core.phases import is_terminal
from cyclone.kube import kinds

from .conftest import STAGE_RESOURCES
from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run

A_TOKEN = "a-scm-token-never-to-be-seen"


def cluster_stage(namespace: str, name: str, **pod_spec: object) -> dict:
    container = {"name": "main", "image": "busybox", "command": ["sh", "-c", "true"],
                 "resources": STAGE_RESOURCES}
    container.update(pod_spec.pop("container", {}))
    return {"apiVersion": keys.API_VERSION, "kind": "Stage",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"pod": {"spec": {"containers": [container], **pod_spec}}}}


def cluster_flow(namespace: str, name: str, run_spec: dict, **pod_spec: object) -> list[dict]:
    """A Stage, a Workflow and a WorkflowRun as kubectl would create them."""
    return [
        cluster_stage(namespace, f"s-{name}", **pod_spec),
        {"apiVersion": keys.API_VERSION, "kind": "Workflow",
         "metadata": {"name": f"wf-{name}", "namespace": namespace},
         "spec": {"stages": [{"name": f"s-{name}"}]}},
        {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
         "metadata": {"name": f"r-{name}", "namespace": namespace},
         "spec": {"workflowRef": {"name": f"wf-{name}"}, **run_spec}},
    ]


async def finished(cluster, namespace: str, name: str, within: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        run = await cluster.get(kinds.WORKFLOW_RUN, name, namespace)
        overall = (run.get("status") or {}).get("overall") or {}
        if is_terminal(overall.get("phase")):
            return run
        assert loop.time() < deadline, f"run {name} still {overall} after {within}s"
        await asyncio.sleep(0.2)


async def test_b_cannot_reach_a_through_the_engine(stack):
    a, b = stack.a, stack.b
    expect(await a.http.post("/integrations", json={"metadata": {"name": "gh"}, "spec": {
        "type": "SCM", "scm": {"type": "GitHub", "server": "https://github.com",
                               "token": A_TOKEN}}}), 201)
    a_context = expect(await a.http.get("/integrations/cluster"), 200)
    a_worker = f"{a.namespace}-worker"
    a_pvc = keys.tenant_pvc_name(a.name)
    await apply_flow(b.http, "demo", "ci", [shell_stage("hello", "echo hi")])

    rest_attempts = [
        ({"executionContext": {"cluster": keys.CONTROL_CLUSTER_NAME, "namespace": a_worker,
                               "pvc": a_pvc}}, "spec.executionContext.namespace"),
        ({"executionContext": {"namespace": a.namespace}}, "spec.executionContext.namespace"),
        ({"executionContext": {"namespace": f"{b.namespace}-worker", "pvc": a_pvc}},
         "spec.executionContext.pvc"),
        ({"globalVariables": [{"name": "T", "value":
                               f"${{secrets.{a.namespace}:gh/data.integration/scm.token}}"}]},
         "spec.globalVariables[0].value"),
        ({"volumes": [{"type": "PVC", "objectName": a_pvc, "mountPath": "/a"}]},
         "spec.volumes[0].objectName"),
    ]
    for spec, field in rest_attempts:
        response = await b.http.post(runs_path("demo", "ci"), json={"spec": spec})
        assert response.status_code == 403, (spec, response.text)
        assert field in response.json()["message"]
    for pod_spec in ({"hostNetwork": True}, {"hostPID": True},
                     {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
                     {"container": {"securityContext": {"privileged": True}}},
                     {"container": {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}},
                     {"container": {"ports": [{"containerPort": 80, "hostPort": 8080}]}}):
        stage = cluster_stage(b.namespace, "escape", **pod_spec)
        response = await b.http.post("/projects/demo/stages", json={
            "metadata": {"name": "escape"}, "spec": stage["spec"]})
        assert response.status_code == 422, (pod_spec, response.text)

    kubectl_attempts = {
        "ns": ({"executionContext": {"cluster": keys.CONTROL_CLUSTER_NAME,
                                     "namespace": a_worker, "pvc": a_pvc}}, {},
               "spec.executionContext.namespace"),
        "home": ({"executionContext": {"namespace": a.namespace}}, {},
                 "spec.executionContext.namespace"),
        "secretref": ({"executionContext": {"namespace": a_worker}}, {"container": {"env": [
            {"name": "T", "valueFrom": {"secretKeyRef": {"name": "gh", "key": "integration"}}}
        ]}}, "spec.executionContext.namespace"),
        "tokens": ({}, {"container": {"env": [{"name": "T", "valueFrom": {"secretKeyRef": {
            "name": "cyclone-tenant-tokens", "key": "tokens"}}}]}},
            "valueFrom.secretKeyRef.name"),
        "secrets": ({}, {"container": {"env": [{"name": "T", "value":
                                                f"${{secrets.{a.namespace}:gh/data.integration}}"}]}},
                    "containers[0].env[0].value"),
        "hostpath": ({}, {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
                     "spec.pod.spec.volumes[0].hostPath"),
        "privileged": ({}, {"container": {"securityContext": {"privileged": True}}},
                       "securityContext.privileged"),
        "hostnetwork": ({}, {"hostNetwork": True}, "spec.pod.spec.hostNetwork"),
        "caps": ({}, {"container": {"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}},
                 "capabilities.add"),
        "hostport": ({}, {"container": {"ports": [{"containerPort": 80, "hostPort": 8080}]}},
                     "ports[0].hostPort"),
    }
    for name, (run_spec, pod_spec, _) in kubectl_attempts.items():
        for obj in cluster_flow(b.namespace, name, run_spec, **pod_spec):
            await stack.cluster.create(obj, namespace=b.namespace)
    for name, (_, _, field) in kubectl_attempts.items():
        run = await finished(stack.cluster, b.namespace, f"r-{name}")
        overall = run["status"]["overall"]
        assert (overall["phase"], overall["reason"]) == ("Failed", "TenancyViolation"), \
            (name, overall)
        assert field in overall["message"], (name, overall)
        assert A_TOKEN not in str(run)
    for namespace in (a.namespace, a_worker, b.namespace, f"{b.namespace}-worker"):
        pods = (await stack.cluster.list(
            kinds.POD, namespace,
            label_selector=f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}")).items
        assert pods == [], (namespace, [p["metadata"]["name"] for p in pods])
    assert a_context["spec"]["cluster"]["isWorkerCluster"] is True


async def test_a_feature_is_admitted_once_an_admin_allows_it_for_that_tenant(stack):
    b = stack.b
    await apply_flow(b.http, "demo", "plain", [shell_stage("hello", "echo hi")])
    net = shell_stage("net", "echo on the host network")
    net["spec"]["pod"]["spec"]["hostNetwork"] = True
    expect(await b.http.post("/projects/demo/stages", json=net), 422)

    tenant = expect(await stack.admin.get(f"/tenants/{b.name}"), 200)
    tenant["spec"]["allowedPodFeatures"] = ["hostNetwork"]
    expect(await stack.admin.put(f"/tenants/{b.name}", json=tenant), 200)
    await apply_flow(b.http, "demo", "net", [net])
    run = await start_run(b.http, "demo", "net")
    done = await wait_run(b.http, "demo", "net", run["metadata"]["name"])
    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]

    privileged = cluster_flow(b.namespace, "priv", {},
                              container={"securityContext": {"privileged": True}})
    for obj in privileged:
        await stack.cluster.create(obj, namespace=b.namespace)
    refused = await finished(stack.cluster, b.namespace, "r-priv")
    assert refused["status"]["overall"]["reason"] == "TenancyViolation"
    a_net = shell_stage("net", "true")
    a_net["spec"]["pod"]["spec"]["hostNetwork"] = True
    await stack.a.http.post("/projects", json={"metadata": {"name": "demo"}})
    expect(await stack.a.http.post("/projects/demo/stages", json=a_net), 422)
