"""Of several server replicas on one cluster, only the holder of the `cyclone-server` lease
collects stage logs and sweeps the stored data of runs that are gone; when it goes away,
another replica takes both over."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from support.clusters import eventually

from cyclone.api import keys
from cyclone.components import (
    SERVER_LEASE,
    ClusterSource,
    ElectionOptions,
    ServerOptions,
    run_server,
)
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.embedded.logs import NODE_LOG_DIR_ANNOTATION
from cyclone.kube.errors import NotFound
from cyclone.kube.leader import LeaseTimings
from cyclone.server.logs import LogRef, LogStore, RunRef
from logs.fakes import set_succeeded, stage_pod

TENANT = "devops"
NAMESPACE = keys.tenant_namespace(TENANT)
LEASE_NAMESPACE = "cyclone"
TIMINGS = LeaseTimings(lease_duration=2.0, renew_deadline=1.0, retry_period=0.1)
ORPHAN = Path(TENANT) / "proj" / "wf" / "deleted-run" / "uid-of-deleted-run"


def plant_orphans(data_dir: Path) -> list[Path]:
    """Stored logs and artifacts of a run that no longer exists."""
    planted = []
    for store in ("logs", "artifacts"):
        path = data_dir / store / ORPHAN
        (path / "build").mkdir(parents=True)
        (path / "build" / "main.log").write_bytes(b"old\n")
        planted.append(path)
    return planted


@contextlib.asynccontextmanager
async def server_replica(db: Path, data_dir: Path, identity: str,
                         token_file: Path) -> AsyncIterator[asyncio.Task]:
    options = ServerOptions(
        cluster=ClusterSource(embedded=str(db)), data_dir=str(data_dir), host="127.0.0.1",
        port=0, admin_token_file=str(token_file),
        election=ElectionOptions(namespace=LEASE_NAMESPACE, identity=identity, timings=TIMINGS),
    )
    task = asyncio.create_task(run_server(options), name=f"server-{identity}")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def holder(cluster: EmbeddedCluster) -> str | None:
    try:
        lease = await cluster.get(kinds.LEASE, SERVER_LEASE, LEASE_NAMESPACE)
    except NotFound:
        return None
    return (lease.get("spec") or {}).get("holderIdentity") or None


class Stage:
    """Finished stage pods of one run on a node whose logs are files under `node_logs`."""

    def __init__(self, cluster: EmbeddedCluster, node_logs: Path, run: dict) -> None:
        self.cluster = cluster
        self.node_logs = node_logs
        self.run = run

    def ref(self, stage: str) -> LogRef:
        meta = self.run["metadata"]
        return LogRef(RunRef(TENANT, "proj", "wf", meta["name"], uid=meta["uid"]), stage, "main")

    async def finish(self, stage: str, output: bytes) -> dict:
        pod = stage_pod(f"wf-{stage}", namespace=NAMESPACE, tenant_ns=NAMESPACE)
        pod["metadata"].pop("resourceVersion")
        pod["metadata"]["labels"][keys.LABEL_STAGE] = stage
        pod["metadata"]["annotations"][keys.ANNOTATION_WORKFLOWRUN_UID] = \
            self.run["metadata"]["uid"]
        pod["spec"]["nodeName"] = "node-1"
        log_file = self.node_logs / NAMESPACE / pod["metadata"]["name"] / "main.log"
        log_file.parent.mkdir(parents=True)
        log_file.write_bytes(output)
        created = await self.cluster.create(pod)
        set_succeeded(created)
        return await self.cluster.replace_status(created)

    async def wait_collected(self, pod: dict) -> None:
        async def marked() -> bool:
            current = await self.cluster.get(kinds.POD, pod["metadata"]["name"], NAMESPACE)
            return bool((current["metadata"].get("annotations") or {})
                        .get(keys.ANNOTATION_LOGS_COLLECTED))

        await eventually(marked, timeout=30)


async def test_only_the_lease_holder_collects_and_sweeps_and_the_other_takes_over(tmp_path):
    db = tmp_path / "cluster.db"
    token = tmp_path / "token"
    token.write_text("replica-admin-token\n")
    node_logs = tmp_path / "node-logs"
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_orphans, second_orphans = plant_orphans(first_dir), plant_orphans(second_dir)
    first_store, second_store = LogStore(first_dir / "logs"), LogStore(second_dir / "logs")

    async with EmbeddedCluster(db) as cluster:
        await cluster.create({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": "node-1", "annotations": {NODE_LOG_DIR_ANNOTATION: str(node_logs)}}})
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": NAMESPACE}})
        run = await cluster.create({
            "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
            "metadata": {"name": "wf-run1", "namespace": NAMESPACE, "labels": {
                keys.LABEL_PROJECT: "proj", keys.LABEL_WORKFLOW: "wf"}},
            "spec": {"workflowRef": {"name": "wf"}},
        })
        stages = Stage(cluster, node_logs, run)

        async with server_replica(db, first_dir, "first", token) as first:
            assert await eventually(lambda: holder(cluster), timeout=30) == "first"
            await eventually(lambda: not any(p.exists() for p in first_orphans), timeout=30)
            async with server_replica(db, second_dir, "second", token):
                build = await stages.finish("build", b"compiled\n")
                await stages.wait_collected(build)
                assert first_store.read(stages.ref("build")) == b"compiled\n"
                assert not second_store.exists(stages.ref("build"))
                assert all(p.exists() for p in second_orphans)
                assert await holder(cluster) == "first"

                first.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first
                assert await eventually(lambda: holder(cluster), timeout=30) == "second"
                await eventually(lambda: not any(p.exists() for p in second_orphans),
                                 timeout=30)
                test = await stages.finish("test", b"3 passed\n")
                await stages.wait_collected(test)
                assert second_store.read(stages.ref("test")) == b"3 passed\n"
    assert not first_store.exists(stages.ref("test"))
