"""A scheduling node agent takes only the pods that ask for the default scheduler."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clusters import CLUSTER_FACTORIES, cluster_params

from cyclone.kube import kinds
from cyclone.kube.protocol import Cluster
from cyclone.kube.scheduling import awaits_default_scheduler
from cyclone.node import FakeRuntime
from node.helpers import pod_manifest, running_agent, wait_for_pod

SPEC = {"containers": [{"name": "work", "image": "busybox", "command": ["true"]}]}


@pytest.fixture(params=cluster_params())
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with CLUSTER_FACTORIES[request.param](tmp_path) as opened:
        yield opened


def test_only_an_unbound_live_pod_of_the_default_scheduler_awaits_it() -> None:
    def pod(**spec: object) -> dict:
        return {"metadata": {"name": "p"}, "spec": spec}

    assert awaits_default_scheduler(pod())
    assert awaits_default_scheduler(pod(schedulerName="default-scheduler"))
    assert not awaits_default_scheduler(pod(schedulerName="volcano"))
    assert not awaits_default_scheduler(pod(nodeName="n1"))
    assert not awaits_default_scheduler(
        {"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}})


async def test_a_pod_for_another_scheduler_is_left_unbound(
        cluster: Cluster, tmp_path: Path) -> None:
    suffix = secrets.token_hex(3)
    other, default = f"other-{suffix}", f"default-{suffix}"
    node = f"sched-{suffix}"
    async with running_agent(cluster, tmp_path / "node", FakeRuntime(), node_name=node,
                             schedule_unbound=True):
        await cluster.create(pod_manifest(other, {**SPEC, "schedulerName": "elsewhere"},
                                          node=None))
        await cluster.create(pod_manifest(default, SPEC, node=None))
        await wait_for_pod(cluster, default,
                           lambda p: (p.get("status") or {}).get("phase") == "Succeeded")
        await asyncio.sleep(1)
        left = await cluster.get(kinds.POD, other, "default")
    assert not left["spec"].get("nodeName")
    assert left["status"]["phase"] == "Pending"
    for name in (other, default):
        await cluster.delete(kinds.POD, name, "default", grace_period_seconds=0)
