"""A cache cleaning task goes where the tenant's runs go: a worker cluster it opened."""

from __future__ import annotations

from cyclone.kube import kinds

from .test_clusters import WORKER


async def test_the_cleaning_pod_runs_in_the_opened_worker_cluster_on_its_pvc(
        devops, cluster, lookups):
    assert (await devops.post("/integrations", json=WORKER)).status_code == 201
    assert (await devops.put("/integrations/worker/opencluster")).status_code == 200
    assert (await devops.post("/projects", json={"metadata": {"name": "p"}})).status_code == 201
    lookups.clear()

    response = await devops.post("/projects/p/cleancachetasks")
    assert response.status_code == 202, response.text
    assert [source["clusterName"] for source in lookups] == ["worker-1"]
    pod = await cluster.get(kinds.POD, "cachegc--p", "cyclone-devops-worker")
    assert pod["spec"]["volumes"] == [{"name": "cyclone-data", "persistentVolumeClaim": {
        "claimName": "cyclone-pvc-devops"}}]
    task = await devops.get("/projects/p/cleancachetasks/cachegc--p")
    assert task.status_code == 200 and task.json()["phase"] == "Pending"
    again = await devops.post("/projects/p/cleancachetasks")
    assert again.status_code == 202 and again.json()["name"] == "cachegc--p"
