"""Container logs served from the files a node agent writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cyclone.kube import kinds
from cyclone.kube.embedded import NODE_LOG_DIR_ANNOTATION, EmbeddedCluster
from cyclone.kube.embedded.logs import read_pod_logs
from cyclone.kube.errors import BadRequest, NotFound


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[EmbeddedCluster]:
    async with EmbeddedCluster(tmp_path / "c.db") as opened:
        await opened.create({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": "n1", "annotations": {NODE_LOG_DIR_ANNOTATION: str(tmp_path / "logs")}}})
        await opened.create({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": "p", "namespace": "default"},
                             "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
        yield opened


def _log_file(tmp_path: Path) -> Path:
    path = tmp_path / "logs" / "default" / "p" / "main.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


async def _read(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def _set_state(cluster: EmbeddedCluster, state: dict) -> None:
    await cluster.patch(kinds.POD, "p", {"status": {"containerStatuses": [
        {"name": "main", "state": state}]}}, "default", subresource="status")


async def test_missing_pod_is_not_found(cluster: EmbeddedCluster) -> None:
    with pytest.raises(NotFound):
        await _read(cluster.pod_logs("nope", "default"))


async def test_unscheduled_pod_has_no_log_and_a_waiting_container_is_bad_request(
    cluster: EmbeddedCluster,
) -> None:
    assert await _read(cluster.pod_logs("p", "default", container="main")) == b""
    await cluster.bind_pod("p", "default", "n1")
    with pytest.raises(BadRequest) as caught:
        await _read(cluster.pod_logs("p", "default", container="main"))
    assert 'container "main" in pod "p" is waiting to start' in caught.value.message


async def test_reads_the_log_from_an_offset(cluster: EmbeddedCluster, tmp_path: Path) -> None:
    await cluster.bind_pod("p", "default", "n1")
    _log_file(tmp_path).write_bytes(b"one\ntwo\n")
    assert await _read(cluster.pod_logs("p", "default")) == b"one\ntwo\n"
    assert await _read(cluster.pod_logs("p", "default", since_bytes=4)) == b"two\n"


async def test_follow_ends_when_the_container_terminates_and_the_file_is_drained(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    await cluster.bind_pod("p", "default", "n1")
    log = _log_file(tmp_path)
    log.write_bytes(b"start\n")
    await _set_state(cluster, {"running": {}})
    pod_reads: list[dict] = []
    drained_and_looked = asyncio.Event()

    async def get(kind, name, namespace=None):
        found = await cluster.get(kind, name, namespace)
        if kind is kinds.POD:
            pod_reads.append(found)
            if len(pod_reads) >= 3:
                drained_and_looked.set()
        return found

    following = asyncio.ensure_future(_read(read_pod_logs(
        get, "p", "default", container=None, follow=True, since_bytes=0)))
    await asyncio.wait_for(drained_and_looked.wait(), 30)
    assert not following.done()
    with log.open("ab") as handle:
        handle.write(b"more\n")
    await _set_state(cluster, {"terminated": {"exitCode": 0}})
    async with asyncio.timeout(10):
        assert await following == b"start\nmore\n"
