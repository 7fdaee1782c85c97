"""Embedded-only semantics: what the contract suite cannot check on core kinds of a real
API server (generation, custom-resource status, compaction) or that only exists here."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster, objects
from cyclone.kube.errors import BadRequest, Conflict, Gone, Invalid, NotFound
from cyclone.kube.protocol import Cluster

RUN = {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
       "metadata": {"name": "run", "namespace": "default"},
       "spec": {"workflowRef": {"name": "wf"}}, "status": {"overall": {"phase": "Running"}}}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[EmbeddedCluster]:
    async with EmbeddedCluster(tmp_path / "c.db", change_log_size=8) as opened:
        yield opened


async def test_generation_bumps_on_spec_change_only(cluster: EmbeddedCluster) -> None:
    created = await cluster.create(RUN)
    assert created["metadata"]["generation"] == 1
    assert "status" not in created
    labelled = await cluster.patch(kinds.WORKFLOW_RUN, "run",
                                   {"metadata": {"labels": {"a": "b"}}}, "default")
    assert labelled["metadata"]["generation"] == 1
    status = await cluster.patch(kinds.WORKFLOW_RUN, "run", {"status": {"cleaned": True}},
                                 "default", subresource="status")
    assert status["metadata"]["generation"] == 1
    changed = await cluster.patch(kinds.WORKFLOW_RUN, "run", {"spec": {"timeout": "1h"}},
                                  "default")
    assert changed["metadata"]["generation"] == 2


async def test_custom_resource_status_update_keeps_only_status(
    cluster: EmbeddedCluster,
) -> None:
    await cluster.create(RUN)
    patched = await cluster.patch(
        kinds.WORKFLOW_RUN, "run",
        {"metadata": {"labels": {"x": "y"}}, "spec": {"timeout": "5m"},
         "status": {"cleaned": True}},
        "default", subresource="status",
    )
    assert patched["status"] == {"cleaned": True}
    assert "labels" not in patched["metadata"]
    assert "timeout" not in patched["spec"]


async def test_unknown_kind_is_invalid(cluster: EmbeddedCluster) -> None:
    with pytest.raises(Invalid):
        await cluster.create({"apiVersion": "v1", "kind": "Nope", "metadata": {"name": "x"}})


async def test_bad_name_is_invalid(cluster: EmbeddedCluster) -> None:
    with pytest.raises(Invalid):
        await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "Not_Valid"}})


async def test_watch_from_a_compacted_version_is_gone(cluster: EmbeddedCluster) -> None:
    first = await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "c", "namespace": "default"}})
    for index in range(40):
        await cluster.patch(kinds.CONFIG_MAP, "c", {"data": {"i": str(index)}}, "default")
    with pytest.raises(Gone):
        async for _ in cluster.watch(kinds.CONFIG_MAP, "default",
                                     resource_version=first["metadata"]["resourceVersion"]):
            pass
    recent = (await cluster.list(kinds.CONFIG_MAP, "default")).resource_version
    async for _ in cluster.watch(kinds.CONFIG_MAP, "default", resource_version=recent,
                                 timeout_seconds=1):
        pass


async def test_watch_history_is_that_of_its_own_kind_in_order(tmp_path: Path) -> None:
    """More changes of the watched kind than one read of the history holds, between
    changes of another kind: the watch sees every one of its own, in order."""
    async with EmbeddedCluster(tmp_path / "h.db") as cluster:
        start = (await cluster.list(kinds.CONFIG_MAP, "default")).resource_version
        await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "c", "namespace": "default"}})
        await cluster.create({"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "s", "namespace": "default"}})
        for index in range(250):
            await cluster.patch(kinds.SECRET, "s", {"stringData": {"i": str(index)}},
                                "default")
            await cluster.patch(kinds.CONFIG_MAP, "c", {"data": {"i": str(index)}},
                                "default")
        seen = [(event.type, (event.object.get("data") or {}).get("i"))
                async for event in cluster.watch(kinds.CONFIG_MAP, "default",
                                                 resource_version=start, timeout_seconds=1)]
        assert seen == [("ADDED", None)] + [("MODIFIED", str(i)) for i in range(250)]


async def test_events_and_secrets_are_plain_objects(cluster: EmbeddedCluster) -> None:
    event = await cluster.create({"apiVersion": "v1", "kind": "Event",
                                  "metadata": {"generateName": "run.", "namespace": "default"},
                                  "reason": "StagePodCreated", "message": "m"})
    assert event["reason"] == "StagePodCreated"
    secret = await cluster.create({"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": "s", "namespace": "default"},
                                   "stringData": {"k": "v"}})
    assert secret["data"] == {"k": base64.b64encode(b"v").decode()}
    assert "stringData" not in secret


async def test_pods_get_api_server_defaults(cluster: EmbeddedCluster) -> None:
    pod = await cluster.create({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]},
    })
    container = pod["spec"]["containers"][0]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["status"] == {"phase": "Pending", "qosClass": "Guaranteed"}
    with pytest.raises(Invalid):
        await cluster.create({"apiVersion": "v1", "kind": "Pod",
                              "metadata": {"name": "q", "namespace": "default"}, "spec": {}})


async def test_state_survives_reopening(tmp_path: Path) -> None:
    async with EmbeddedCluster(tmp_path / "c.db") as first:
        created = await first.create({"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "kept", "namespace": "default"}})
    async with EmbeddedCluster(tmp_path / "c.db") as second:
        kept = await second.get(kinds.CONFIG_MAP, "kept", "default")
        assert kept["metadata"]["uid"] == created["metadata"]["uid"]
        again = await second.create({"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "new", "namespace": "default"}})
        assert int(again["metadata"]["resourceVersion"]) > int(
            created["metadata"]["resourceVersion"])


async def test_generate_name_retries_on_collision(
    cluster: EmbeddedCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = iter(["gen-aaaaa", "gen-aaaaa", "gen-bbbbb"])
    monkeypatch.setattr(objects, "generated_name", lambda prefix: next(names))
    manifest = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"generateName": "gen-", "namespace": "default"}}
    first = await cluster.create(manifest)
    second = await cluster.create(manifest)
    assert [first["metadata"]["name"], second["metadata"]["name"]] == ["gen-aaaaa", "gen-bbbbb"]


async def test_implements_the_cluster_protocol_and_close_ends_watches(tmp_path: Path) -> None:
    cluster = EmbeddedCluster(tmp_path / "p.db")
    assert isinstance(cluster, Cluster)
    await cluster.start()
    stream = cluster.watch(kinds.CONFIG_MAP, "default")
    first = asyncio.ensure_future(anext(stream, None))
    await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "seen", "namespace": "default"}})
    async with asyncio.timeout(30):
        assert (await first).object["metadata"]["name"] == "seen"
    watching = asyncio.ensure_future(anext(stream, None))
    await cluster.close()
    async with asyncio.timeout(5):
        assert await watching is None


async def test_object_that_is_not_json_is_bad_request(cluster: EmbeddedCluster) -> None:
    with pytest.raises(BadRequest):
        await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "x", "namespace": "default"},
                              "data": {"when": object()}})
    with pytest.raises(NotFound):
        await cluster.get(kinds.CONFIG_MAP, "x", "default")


async def test_quota_usage_stays_exact_through_pod_lifecycles(
    cluster: EmbeddedCluster,
) -> None:
    await cluster.create({"apiVersion": "v1", "kind": "ResourceQuota",
                          "metadata": {"name": "q", "namespace": "default"},
                          "spec": {"hard": {"pods": "50", "requests.memory": "10Gi"}}})

    def pod(name: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {
                    "requests": {"memory": "100Mi"}}}]}}

    for index in range(6):
        await cluster.create(pod(f"p{index}"))
    await cluster.patch(kinds.POD, "p0", {"status": {"phase": "Succeeded"}}, "default",
                        subresource="status")
    await cluster.delete(kinds.POD, "p0", "default")
    await cluster.delete(kinds.POD, "p1", "default")
    await cluster.patch(kinds.POD, "p2", {"status": {"phase": "Failed"}}, "default",
                        subresource="status")
    used = (await cluster.get(kinds.RESOURCE_QUOTA, "q", "default"))["status"]["used"]
    assert used == {"pods": "3", "requests.memory": "300Mi"}


async def test_a_pod_deleted_on_a_missing_node_goes_when_its_grace_period_ends(tmp_path):
    from cyclone.kube import kinds
    from cyclone.kube.embedded import EmbeddedCluster
    from cyclone.kube.errors import NotFound

    async with EmbeddedCluster(tmp_path / "c.db", pod_gc_interval=0.05) as cluster:
        await cluster.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "orphan", "namespace": "default"}, "spec": {
            "terminationGracePeriodSeconds": 3,
            "containers": [{"name": "c", "image": "busybox"}]}})
        await cluster.bind_pod("orphan", "default", "gone-node")
        lingering = await cluster.delete(kinds.POD, "orphan", "default")
        assert lingering["metadata"]["deletionGracePeriodSeconds"] == 3
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        passes = cluster.pod_gc_passes
        while cluster.pod_gc_passes < passes + 2:
            assert loop.time() < deadline, "the orphaned-pod collector never ran"
            await asyncio.sleep(0.01)
        held = await cluster.get(kinds.POD, "orphan", "default")
        deleted_at = datetime.fromisoformat(
            held["metadata"]["deletionTimestamp"].replace("Z", "+00:00"))
        assert datetime.now(UTC) < deleted_at + timedelta(seconds=3), \
            "the collector's pass was too late to show the pod kept during its grace period"
        deadline = loop.time() + 60
        while True:
            try:
                await cluster.get(kinds.POD, "orphan", "default")
            except NotFound:
                break
            assert loop.time() < deadline, "the orphaned pod was never collected"
            await asyncio.sleep(0.05)


async def test_a_cluster_that_schedules_on_create_assigns_unbound_default_pods_only(
        cluster: EmbeddedCluster) -> None:
    def pod(name: str, **spec: object) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}

    await cluster.create(pod("before"))
    cluster.schedule_on_create = "node-1"
    created = await cluster.create(pod("unbound"))
    pinned = await cluster.create(pod("pinned", nodeName="node-2"))
    elsewhere = await cluster.create(pod("elsewhere", schedulerName="volcano"))
    assert not elsewhere["spec"].get("nodeName")
    assert created["spec"]["nodeName"] == "node-1"
    assert [(c["type"], c["status"]) for c in created["status"]["conditions"]] == [
        ("PodScheduled", "True")]
    assert pinned["spec"]["nodeName"] == "node-2"
    assert not (pinned.get("status") or {}).get("conditions")
    assert not (await cluster.get(kinds.POD, "before", "default"))["spec"].get("nodeName")
    await cluster.bind_pod("before", "default", "node-1")
    with pytest.raises(Conflict):
        await cluster.bind_pod("unbound", "default", "node-3")
