"""Kubernetes behaviours the contract suite does not pin yet, run on every cluster.

Where the embedded store still differs from kube-apiserver v1.20 the case is marked
`xfail(strict=True)` for it, so fixing the embedded store turns the mark into a failure
that asks for its removal.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clusters import CLUSTER_FACTORIES, cluster_params, eventually

from cyclone.kube import kinds
from cyclone.kube.errors import ApiError, NotFound
from cyclone.kube.protocol import Cluster

EMBEDDED_DIFFERENCES: dict[str, str] = {}


@pytest.fixture(params=cluster_params())
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    difference = EMBEDDED_DIFFERENCES.get(request.node.originalname)
    if difference and request.param == "embedded":
        request.applymarker(pytest.mark.xfail(strict=True, reason=difference))
    async with CLUSTER_FACTORIES[request.param](tmp_path) as opened:
        yield opened


@pytest.fixture
async def namespace(cluster: Cluster) -> AsyncIterator[str]:
    name = f"ks-{secrets.token_hex(4)}"
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await eventually(lambda: cluster.get(kinds.SERVICE_ACCOUNT, "default", name), timeout=30)
    yield name
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.NAMESPACE, name)


def unscheduled_pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"schedulerName": "nobody", "restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "busybox:1.36"}]}}


async def test_create_with_a_resource_version_is_refused(cluster: Cluster, namespace: str) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "preset", "resourceVersion": "5"}}
    with pytest.raises(ApiError, match="resourceVersion should not be set"):
        await cluster.create(config_map, namespace=namespace)


async def test_log_of_a_pod_without_a_node_is_empty(cluster: Cluster, namespace: str) -> None:
    await cluster.create(unscheduled_pod("waiting"), namespace=namespace)
    assert [chunk async for chunk in cluster.pod_logs("waiting", namespace)] == []


async def test_pod_bound_to_a_missing_node_lingers_for_its_grace_period(
    cluster: Cluster, namespace: str,
) -> None:
    await cluster.create(unscheduled_pod("bound"), namespace=namespace)
    await cluster.bind_pod("bound", namespace, f"absent-{secrets.token_hex(3)}")
    lingering = await cluster.delete(kinds.POD, "bound", namespace)
    assert lingering is not None
    assert lingering["metadata"]["deletionTimestamp"]
    assert lingering["metadata"]["deletionGracePeriodSeconds"] == 30
    await cluster.delete(kinds.POD, "bound", namespace, grace_period_seconds=0)
    with pytest.raises(NotFound):
        await cluster.get(kinds.POD, "bound", namespace)
