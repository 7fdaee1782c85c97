"""The collector against the embedded cluster, whose pod logs are the node agent's files."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path

import pytest

from cyclone.api.keys import ANNOTATION_LOGS_COLLECTED
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.embedded.logs import NODE_LOG_DIR_ANNOTATION
from cyclone.server.logs import LogCollector, LogRef, LogStore, RunRef
from logs.fakes import eventually, set_running, set_succeeded, stage_pod

NS = "cyclone-devops-worker"


@pytest.fixture
async def cluster(tmp_path: Path):
    embedded = EmbeddedCluster(tmp_path / "cluster.db", poll_interval=0.01)
    await embedded.start()
    try:
        yield embedded
    finally:
        await embedded.close()


async def test_collector_follows_node_agent_logs_into_the_store(cluster, tmp_path) -> None:
    node_logs = tmp_path / "node-logs"
    await cluster.create({"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "node-1", "annotations": {NODE_LOG_DIR_ANNOTATION: str(node_logs)}}})
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    token = base64.b64encode(b"ghp_s3cr3t").decode()
    await cluster.create({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "scm", "namespace": NS}, "data": {"token": token}})
    pod = stage_pod(env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "scm", "key": "token"}}}])
    pod["spec"]["nodeName"] = "node-1"
    pod["metadata"].pop("resourceVersion")
    created = await cluster.create(pod)
    log_file = node_logs / NS / pod["metadata"]["name"] / "main.log"
    log_file.parent.mkdir(parents=True)
    log_file.write_bytes(b"fetching with ghp_s3cr3t\n")
    set_running(created)
    created = await cluster.replace_status(created)

    store = LogStore(tmp_path / "logs")
    ref = LogRef(RunRef("devops", "proj", "wf", "wf-run1"), "build", "main")
    task = asyncio.create_task(LogCollector(cluster, store, retry_delay=0.02).run())
    try:
        await eventually(lambda: store.exists(ref) and store.read(ref) == b"fetching with ***\n")
        with log_file.open("ab") as f:
            f.write(b"built\n")
        set_succeeded(created)
        await cluster.replace_status(created)
        await eventually(lambda: store.state(ref).complete)

        for _ in range(500):
            current = await cluster.get(kinds.POD, pod["metadata"]["name"], NS)
            if (current["metadata"].get("annotations") or {}).get(ANNOTATION_LOGS_COLLECTED):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the pod was never marked as having its logs stored")
        await cluster.delete(kinds.POD, pod["metadata"]["name"], NS)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert store.read(ref) == b"fetching with ***\nbuilt\n"
