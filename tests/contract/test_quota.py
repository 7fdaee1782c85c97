"""ResourceQuota admission of pods and the quota's status."""

from __future__ import annotations

import pytest
from support.clusters import eventually

from cyclone.kube import kinds
from cyclone.kube.errors import Forbidden
from cyclone.kube.protocol import Cluster

from .manifests import pod, quota

SMALL = {"cpu": "500m", "memory": "64Mi"}


async def _quota_with_status(cluster: Cluster, namespace: str, name: str, hard: dict) -> dict:
    await cluster.create(quota(name, hard), namespace=namespace)

    async def populated() -> dict | None:
        current = await cluster.get(kinds.RESOURCE_QUOTA, name, namespace)
        status = current.get("status") or {}
        return current if status.get("hard") and "used" in status else None

    return await eventually(populated, timeout=30)


async def _used(cluster: Cluster, namespace: str, name: str) -> dict:
    return (await cluster.get(kinds.RESOURCE_QUOTA, name, namespace))["status"]["used"]


async def test_quota_status_reports_hard_and_used(cluster: Cluster, namespace: str) -> None:
    current = await _quota_with_status(
        cluster, namespace, "compute", {"pods": "3", "requests.cpu": "2"}
    )
    assert current["status"]["hard"] == {"pods": "3", "requests.cpu": "2"}
    assert current["status"]["used"] == {"pods": "0", "requests.cpu": "0"}
    created = await cluster.create(pod(requests=SMALL, limits=SMALL), namespace=namespace)

    async def counted() -> bool:
        return await _used(cluster, namespace, "compute") == {"pods": "1",
                                                              "requests.cpu": "500m"}

    await eventually(counted, timeout=30)
    await cluster.patch(kinds.POD, created["metadata"]["name"],
                        {"status": {"phase": "Succeeded"}}, namespace, subresource="status")

    async def released() -> bool:
        return await _used(cluster, namespace, "compute") == {"pods": "0", "requests.cpu": "0"}

    await eventually(released, timeout=30)


async def test_pod_exceeding_quota_is_forbidden(cluster: Cluster, namespace: str) -> None:
    await _quota_with_status(cluster, namespace, "cpu", {"requests.cpu": "1"})
    await cluster.create(pod(requests={"cpu": "500m"}), namespace=namespace)

    async def counted() -> bool:
        return (await _used(cluster, namespace, "cpu")).get("requests.cpu") == "500m"

    await eventually(counted, timeout=30)
    with pytest.raises(Forbidden) as caught:
        await cluster.create(pod(requests={"cpu": "600m"}), namespace=namespace)
    assert ("exceeded quota: cpu, requested: requests.cpu=600m, used: requests.cpu=500m, "
            "limited: requests.cpu=1") in caught.value.message
    await cluster.create(pod(requests={"cpu": "500m"}), namespace=namespace)


async def test_pod_count_quota(cluster: Cluster, namespace: str) -> None:
    await _quota_with_status(cluster, namespace, "count", {"pods": "1"})
    await cluster.create(pod(), namespace=namespace)

    async def counted() -> bool:
        return (await _used(cluster, namespace, "count")).get("pods") == "1"

    await eventually(counted, timeout=30)
    with pytest.raises(Forbidden) as caught:
        await cluster.create(pod(), namespace=namespace)
    assert "exceeded quota: count" in caught.value.message
    assert "limited: pods=1" in caught.value.message


async def test_pod_without_constrained_request_is_forbidden(
    cluster: Cluster, namespace: str
) -> None:
    await _quota_with_status(cluster, namespace, "mem",
                             {"requests.memory": "1Gi", "limits.memory": "2Gi"})
    with pytest.raises(Forbidden) as caught:
        await cluster.create(pod(requests={"cpu": "100m"}), namespace=namespace)
    assert "failed quota: mem: must specify limits.memory,requests.memory" in (
        caught.value.message
    )
    admitted = await cluster.create(pod(limits={"memory": "128Mi"}), namespace=namespace)
    container = admitted["spec"]["containers"][0]
    assert container["resources"]["requests"]["memory"] == "128Mi"
