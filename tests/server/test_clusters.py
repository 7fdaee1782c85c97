from __future__ import annotations

import base64

import pytest

from cyclone.api import keys
from cyclone.kube import errors, kinds

from .helpers import make_client

WORKER = {"metadata": {"name": "worker"}, "spec": {"type": "Cluster", "cluster": {
    "clusterName": "worker-1", "namespace": "cyclone-devops-worker",
    "credential": {"server": "https://k8s.example", "bearerToken": "tkn"}}}}


async def _absent(cluster, kind, name, namespace=None) -> bool:
    try:
        obj = await cluster.get(kind, name, namespace)
    except errors.NotFound:
        return True
    return bool(obj["metadata"].get("deletionTimestamp"))


async def test_open_cluster_creates_workload_objects(devops, cluster, lookups):
    assert (await devops.post("/integrations", json=WORKER)).status_code == 201
    response = await devops.put("/integrations/worker/opencluster")
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["cluster"]["isWorkerCluster"] is True
    assert lookups and lookups[0]["credential"]["server"] == "https://k8s.example"

    ns = "cyclone-devops-worker"
    assert (await cluster.get(kinds.NAMESPACE, ns))["metadata"]["name"] == ns
    quota = await cluster.get(kinds.RESOURCE_QUOTA, "cyclone-quota-devops", ns)
    assert quota["spec"]["hard"]["limits.cpu"] == "4"
    pvc = await cluster.get(kinds.PERSISTENT_VOLUME_CLAIM, "cyclone-pvc-devops", ns)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert pvc["spec"]["storageClassName"] == "standard"
    pods = (await cluster.list(kinds.POD, ns,
                               label_selector="pod.kubernetes.io/kind=pvc-watcher")).items
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"]["labels"][keys.LABEL_POD_CREATED_BY] == "cyclone"
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REPORT_URL"] == "http://cyclone.test:7099/apis/v1alpha1/storage/usages"
    assert "du " in container["command"][-1]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == \
        "cyclone-pvc-devops"
    ec = await cluster.get(kinds.EXECUTION_CLUSTER, "worker-1")
    assert ec["spec"]["credential"]["server"] == "https://k8s.example"


async def test_watchdog_token_can_report_storage_usage(app, devops, cluster):
    await devops.post("/integrations", json=WORKER)
    await devops.put("/integrations/worker/opencluster")
    secret = await cluster.get(kinds.SECRET, "cyclone-pvc-watcher-token",
                               "cyclone-devops-worker")
    token = base64.b64decode(secret["data"]["token"]).decode()
    async with make_client(app, token) as watchdog:
        usage = {"total": 1000, "used": 300, "items": {"workflowruns": 200, "caches": 100}}
        response = await watchdog.post("/storage/usages", json=usage)
        assert response.status_code == 200, response.text
    got = (await devops.get("/storage/usages")).json()
    assert got["used"] == 300 and got["items"] == {"workflowruns": 200, "caches": 100}


async def test_storage_usage_rejects_bad_reports(devops):
    assert (await devops.get("/storage/usages")).status_code == 404
    bad = await devops.post("/storage/usages", json={"total": -1, "used": "x"})
    assert bad.status_code == 422


async def test_close_cluster_removes_what_open_created(devops, cluster):
    await devops.post("/integrations", json=WORKER)
    await devops.put("/integrations/worker/opencluster")
    response = await devops.put("/integrations/worker/closecluster")
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["cluster"]["isWorkerCluster"] is False
    ns = "cyclone-devops-worker"
    assert await _absent(cluster, kinds.POD, "cyclone-pvc-watcher-devops", ns)
    assert await _absent(cluster, kinds.PERSISTENT_VOLUME_CLAIM, "cyclone-pvc-devops", ns)
    assert await _absent(cluster, kinds.RESOURCE_QUOTA, "cyclone-quota-devops", ns)
    assert await _absent(cluster, kinds.NAMESPACE, ns)
    assert await _absent(cluster, kinds.EXECUTION_CLUSTER, "worker-1")


async def test_open_twice_is_harmless_and_run_uses_opened_cluster(devops, cluster):
    await devops.post("/integrations", json=WORKER)
    assert (await devops.put("/integrations/worker/opencluster")).status_code == 200
    assert (await devops.put("/integrations/worker/opencluster")).status_code == 200
    pods = (await cluster.list(kinds.POD, "cyclone-devops-worker")).items
    assert len(pods) == 1


async def test_control_cluster_integration_uses_control_cluster(devops, cluster, lookups):
    body = {"metadata": {"name": "control"}, "spec": {"type": "Cluster", "cluster": {
        "isControlCluster": True, "namespace": "cyclone-devops-work"}}}
    await devops.post("/integrations", json=body)
    assert (await devops.put("/integrations/control/opencluster")).status_code == 200
    assert lookups == []
    ec = await cluster.get(kinds.EXECUTION_CLUSTER, keys.CONTROL_CLUSTER_NAME)
    assert ec["metadata"]["labels"]["opened.tenant.cyclone.dev/devops"] == "true"
    await devops.put("/integrations/control/closecluster")
    assert not await _absent(cluster, kinds.EXECUTION_CLUSTER, keys.CONTROL_CLUSTER_NAME)
    assert await _absent(cluster, kinds.NAMESPACE, "cyclone-devops-work")


async def test_open_cluster_on_non_cluster_integration_is_400(devops):
    await devops.post("/integrations", json={"metadata": {"name": "reg"}, "spec": {
        "type": "DockerRegistry", "dockerRegistry": {"server": "r"}}})
    response = await devops.put("/integrations/reg/opencluster")
    assert response.status_code == 400
    assert (await devops.put("/integrations/missing/opencluster")).status_code == 404


async def test_deleting_tenant_removes_its_workload_namespace(admin, devops, cluster):
    await devops.post("/integrations", json=WORKER)
    await devops.put("/integrations/worker/opencluster")
    assert (await admin.delete("/tenants/devops")).status_code == 204
    assert await _absent(cluster, kinds.NAMESPACE, "cyclone-devops-worker")
    assert await _absent(cluster, kinds.NAMESPACE, "cyclone-devops")
    assert await _absent(cluster, kinds.EXECUTION_CLUSTER, "worker-1")


@pytest.mark.parametrize("route", ["opencluster", "closecluster"])
async def test_other_tenant_cannot_open_or_close(app, admin, devops, route):
    from .helpers import create_tenant, tenant_token

    await devops.post("/integrations", json=WORKER)
    await create_tenant(admin, "qa")
    async with make_client(app, await tenant_token(admin, "qa")) as qa:
        assert (await qa.put(f"/integrations/worker/{route}")).status_code == 404


async def test_unusable_remote_credential_is_4xx(cluster, tmp_path):
    from cyclone.server import create_app

    from .helpers import ADMIN_TOKEN, create_tenant

    app = create_app(cluster=cluster, data_dir=tmp_path, admin_token=ADMIN_TOKEN)
    async with app.router.lifespan_context(app), make_client(app, ADMIN_TOKEN,
                                                             tenant="devops") as admin:
        await create_tenant(admin, "devops")
        await admin.post("/integrations", json={"metadata": {"name": "w"}, "spec": {
            "type": "Cluster", "cluster": {"credential": {"kubeConfig": "not: [yaml"}}}})
        response = await admin.put("/integrations/w/opencluster")
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["message"]


async def test_control_cluster_namespace_must_be_the_tenants_own(devops, admin, cluster):
    from .helpers import create_tenant

    await create_tenant(admin, "qa")
    for namespace in ("kube-system", "cyclone-qa", "cyclone-devopsx"):
        await devops.post("/integrations", json={"metadata": {"name": "c"}, "spec": {
            "type": "Cluster", "cluster": {"isControlCluster": True, "namespace": namespace}}})
        response = await devops.put("/integrations/c/opencluster")
        assert response.status_code == 403, response.text
        await devops.delete("/integrations/c")
    quotas = (await cluster.list(kinds.RESOURCE_QUOTA, "cyclone-qa")).items
    assert quotas == []


async def test_remote_namespace_of_another_tenant_is_refused(app, devops, admin):
    from .helpers import create_tenant, make_client, tenant_token

    await create_tenant(admin, "qa")
    await devops.post("/integrations", json=WORKER)
    assert (await devops.put("/integrations/worker/opencluster")).status_code == 200
    async with make_client(app, await tenant_token(admin, "qa")) as qa:
        await qa.post("/integrations", json=WORKER)
        response = await qa.put("/integrations/worker/opencluster")
    assert response.status_code == 409
    assert "already the workload namespace of another tenant" in response.json()["message"]


async def test_reserved_integration_names_are_refused(devops):
    response = await devops.post("/integrations", json={
        "metadata": {"name": "cyclone-tenant-tokens"},
        "spec": {"type": "General", "general": []}})
    assert response.status_code == 422


async def test_opened_cluster_placement_cannot_change(devops):
    await devops.post("/integrations", json=WORKER)
    await devops.put("/integrations/worker/opencluster")
    moved = {**WORKER, "spec": {"type": "Cluster", "cluster": {
        **WORKER["spec"]["cluster"], "namespace": "cyclone-devops-elsewhere"}}}
    response = await devops.put("/integrations/worker", json=moved)
    assert response.status_code == 409
    same = await devops.put("/integrations/worker", json=WORKER)
    assert same.status_code == 200, same.text
    assert same.json()["spec"]["cluster"]["isWorkerCluster"] is True


async def test_kubeconfig_text_becomes_the_execution_cluster_object(devops, cluster):
    kubeconfig = ("apiVersion: v1\nkind: Config\ncurrent-context: w\n"
                  "clusters: [{name: w, cluster: {server: 'https://worker:6443'}}]\n"
                  "users: [{name: w, user: {token: abc}}]\n"
                  "contexts: [{name: w, context: {cluster: w, user: w}}]\n")
    integration = {"metadata": {"name": "remote"}, "spec": {"type": "Cluster", "cluster": {
        "namespace": "cyclone-devops-worker", "credential": {"kubeConfig": kubeconfig}}}}
    assert (await devops.post("/integrations", json=integration)).status_code == 201
    response = await devops.put("/integrations/remote/opencluster")
    assert response.status_code == 200, response.text
    assert "abc" not in response.text
    ec = await cluster.get(kinds.EXECUTION_CLUSTER, "remote")
    document = ec["spec"]["credential"]["kubeConfig"]
    assert document["clusters"][0]["cluster"]["server"] == "https://worker:6443"
    assert set(ec["spec"]["credential"]) == {"kubeConfig"}, "unset fields stay out"


async def test_the_control_cluster_is_registered_at_start(app, cluster):
    ec = await cluster.get(kinds.EXECUTION_CLUSTER, keys.CONTROL_CLUSTER_NAME)
    assert ec["spec"]["credential"] == {}


async def test_where_no_controller_runs_open_answers_once_the_intent_is_written(
        cluster, tmp_path):
    from cyclone.server import create_app

    from .helpers import ADMIN_TOKEN, create_tenant

    async def lookup(_source: dict):
        return cluster

    app = create_app(cluster=cluster, data_dir=tmp_path, admin_token=ADMIN_TOKEN,
                     clusters=lookup, provisioning=False)
    async with app.router.lifespan_context(app), make_client(app, ADMIN_TOKEN,
                                                             tenant="devops") as admin:
        await create_tenant(admin, "devops")
        await admin.post("/integrations", json=WORKER)
        response = await admin.put("/integrations/worker/opencluster")
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["cluster"]["isWorkerCluster"] is True
    assert response.json()["workloadNamespace"] == "cyclone-devops-worker"
    assert await _absent(cluster, kinds.NAMESPACE, "cyclone-devops-worker")


async def test_two_tenants_opening_one_namespace_at_once_leave_one_owner(app, admin, devops,
                                                                         cluster):
    import asyncio

    from .helpers import create_tenant, tenant_token

    await create_tenant(admin, "qa")
    await devops.post("/integrations", json=WORKER)
    async with make_client(app, await tenant_token(admin, "qa")) as qa:
        await qa.post("/integrations", json=WORKER)
        answers = await asyncio.gather(devops.put("/integrations/worker/opencluster"),
                                       qa.put("/integrations/worker/opencluster"))
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 409], [a.text for a in answers]
        loser = qa if answers[1].status_code == 409 else devops
        got = await loser.get("/integrations/worker")
        assert got.json()["spec"]["cluster"].get("isWorkerCluster") is False
    ec = await cluster.get(kinds.EXECUTION_CLUSTER, "worker-1")
    opened = [k for k in ec["metadata"]["labels"] if k.startswith("opened.tenant.cyclone.dev/")]
    assert len(opened) == 1


async def test_an_opening_written_over_a_controller_update_is_written_again(
        app, devops, cluster):
    """The provisioning controller records its outcome on the integration's Secret; an
    opening read before that record and written after it is written again, not a 409."""
    from cyclone.server.clusters import open_cluster

    assert (await devops.post("/integrations", json=WORKER)).status_code == 201
    namespace = keys.tenant_namespace("devops")
    stale = await cluster.get(kinds.SECRET, "worker", namespace)
    await cluster.patch(kinds.SECRET, "worker", {"metadata": {"annotations": {
        "test.cyclone.dev/touched": "yes"}}}, namespace)
    answer = await open_cluster(app.state.cyclone, "devops", stale)
    assert answer["spec"]["cluster"]["isWorkerCluster"] is True
    stored = await cluster.get(kinds.SECRET, "worker", namespace)
    assert stored["metadata"]["annotations"]["test.cyclone.dev/touched"] == "yes"
