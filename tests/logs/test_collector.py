from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from cyclone.server.logs.collector import LogCollector, stage_log_refs, tenant_of_pod
from cyclone.server.logs.store import LogRef, LogStore, RunRef
from logs.fakes import FakeLogCluster, eventually, set_running, set_succeeded, stage_pod

NS = "cyclone-devops-worker"
RUN = RunRef("devops", "proj", "wf", "wf-run1")


def ref(container: str = "main") -> LogRef:
    return LogRef(RUN, "build", container)


@contextlib.asynccontextmanager
async def collecting(cluster: FakeLogCluster, store: LogStore):
    collector = LogCollector(cluster, store, retry_delay=0.01)
    task = asyncio.create_task(collector.run())
    try:
        yield collector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def complete(store: LogStore, log_ref: LogRef) -> bool:
    return store.exists(log_ref) and store.state(log_ref).complete


def test_pod_labels_and_meta_namespace_name_the_log_path() -> None:
    pod = stage_pod(init_containers=("csc-git",))
    assert tenant_of_pod(pod) == "devops"
    refs = stage_log_refs(pod)
    assert set(refs) == {"csc-git", "main"}
    assert refs["main"] == ref("main")


def test_pod_without_cyclone_labels_has_no_log_refs() -> None:
    pod = stage_pod()
    del pod["metadata"]["labels"]["stage.cyclone.dev/name"]
    assert stage_log_refs(pod) == {}


async def test_each_container_log_ends_up_in_the_store(tmp_path) -> None:
    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    pod = stage_pod(init_containers=("csc-git",))
    set_running(pod)
    cluster.put_pod(pod)
    cluster.write_log(NS, pod["metadata"]["name"], "csc-git", b"cloned\n")
    cluster.end_logs(NS, pod["metadata"]["name"], "csc-git")
    async with collecting(cluster, store):
        cluster.write_log(NS, pod["metadata"]["name"], "main", b"step 1\n")
        await eventually(lambda: store.exists(ref()) and store.read(ref()) == b"step 1\n")
        cluster.write_log(NS, pod["metadata"]["name"], "main", b"step 2\nno newline")
        set_succeeded(pod)
        cluster.put_pod(pod)
        cluster.end_logs(NS, pod["metadata"]["name"], "main")
        await eventually(lambda: complete(store, ref()) and complete(store, ref("csc-git")))
    assert store.read(ref()) == b"step 1\nstep 2\nno newline"
    assert store.read(ref("csc-git")) == b"cloned\n"
    assert (tmp_path / "logs/devops/proj/wf/wf-run1/build/main.log").is_file()


async def test_container_not_started_is_followed_once_it_starts(tmp_path) -> None:
    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    pod = stage_pod()
    cluster.put_pod(pod)
    async with collecting(cluster, store) as collector:
        await eventually(lambda: collector.pods_examined >= 1)
        assert collector.follows_started == 0
        assert not store.exists(ref())
        set_running(pod)
        cluster.put_pod(pod)
        cluster.write_log(NS, pod["metadata"]["name"], "main", b"hello\n")
        await eventually(lambda: store.exists(ref()) and store.read(ref()) == b"hello\n")


async def test_restarted_collector_resumes_without_duplicates(tmp_path) -> None:
    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    pod = stage_pod()
    name = pod["metadata"]["name"]
    set_running(pod)
    cluster.put_pod(pod)
    cluster.write_log(NS, name, "main", b"line 1\nline 2\n")
    async with collecting(cluster, store):
        await eventually(lambda: store.exists(ref()) and store.read(ref()) == b"line 1\nline 2\n")
    cluster.write_log(NS, name, "main", b"line 3\n")
    set_succeeded(pod)
    cluster.put_pod(pod)
    cluster.end_logs(NS, name, "main")
    async with collecting(cluster, store):
        await eventually(lambda: complete(store, ref()))
    assert store.read(ref()) == b"line 1\nline 2\nline 3\n"
    assert ("main", 14) in cluster.log_reads


def test_bytes_written_after_the_last_recorded_offset_are_cut_on_resume(tmp_path) -> None:
    store = LogStore(tmp_path / "logs")
    writer = store.writer(ref())
    writer.append(b"kept\n", 5)
    with open(store.path(ref()), "ab") as f:
        f.write(b"written but never recorded\n")
    resumed = store.writer(ref())
    assert resumed.source_offset == 5
    assert store.read(ref()) == b"kept\n"
    assert store.path(ref()).read_bytes() == b"kept\n"


async def test_completed_logs_are_not_followed_again(tmp_path) -> None:
    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    pod = stage_pod()
    set_succeeded(pod)
    cluster.put_pod(pod)
    cluster.write_log(NS, pod["metadata"]["name"], "main", b"done\n")
    cluster.end_logs(NS, pod["metadata"]["name"], "main")
    async with collecting(cluster, store):
        await eventually(lambda: complete(store, ref()))
    reads = len(cluster.log_reads)
    async with collecting(cluster, store) as collector:
        await eventually(lambda: collector.pods_examined >= 1)
    assert collector.follows_started == 0
    assert len(cluster.log_reads) == reads
    assert store.read(ref()) == b"done\n"


@pytest.mark.parametrize("split_at", [3, 9, 12])
async def test_secret_values_are_masked_even_across_chunks(tmp_path, split_at: int) -> None:
    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    cluster.put_secret(NS, "git-auth", {"password": "hunter2-pass", "user": "alice"})
    cluster.put_secret(NS, "registry", {"token": "tok-XYZ-987"})
    pod = stage_pod(
        env=[{"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "git-auth",
                                                            "key": "password"}}}],
        volumes=[{"name": "reg", "secret": {"secretName": "registry"}}],
    )
    name = pod["metadata"]["name"]
    set_running(pod)
    cluster.put_pod(pod)
    line = b"login hunter2-pass user alice with tok-XYZ-987\n"
    async with collecting(cluster, store):
        cluster.write_log(NS, name, "main", line[:split_at])
        await eventually(lambda: cluster.delivered.get((NS, name, "main")) == split_at)
        cluster.write_log(NS, name, "main", line[split_at:])
        set_succeeded(pod)
        cluster.put_pod(pod)
        cluster.end_logs(NS, name, "main")
        await eventually(lambda: complete(store, ref()))
    assert store.read(ref()) == b"login *** user alice with ***\n"


async def test_logs_survive_pod_deletion(tmp_path) -> None:
    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    pod = stage_pod()
    name = pod["metadata"]["name"]
    set_running(pod)
    cluster.put_pod(pod)
    async with collecting(cluster, store):
        cluster.write_log(NS, name, "main", b"before delete\n")
        await eventually(lambda: store.exists(ref()) and store.read(ref()) == b"before delete\n")
        cluster.delete_pod(NS, name)
        await eventually(lambda: complete(store, ref()))
    assert store.read(ref()) == b"before delete\n"


async def test_follow_yields_appends_until_complete(tmp_path) -> None:
    store = LogStore(tmp_path / "logs", poll_interval=5.0)
    received: list[bytes] = []

    async def reader() -> None:
        async for chunk in store.follow(ref()):
            received.append(chunk)

    task = asyncio.create_task(reader())
    writer = store.writer(ref())
    writer.append(b"a\n", 2)
    await eventually(lambda: b"".join(received) == b"a\n")
    writer.append(b"b\n", 2)
    writer.finish()
    await asyncio.wait_for(task, 2)
    assert b"".join(received) == b"a\nb\n"


async def test_collector_can_share_an_informer_its_caller_runs(tmp_path) -> None:
    from cyclone.kube import kinds
    from cyclone.kube.informer import Informer

    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    pod = stage_pod()
    set_succeeded(pod)
    cluster.put_pod(pod)
    cluster.write_log(NS, pod["metadata"]["name"], "main", b"shared\n")
    cluster.end_logs(NS, pod["metadata"]["name"], "main")
    informer = Informer(cluster, kinds.POD)
    async with asyncio.TaskGroup() as group:
        informer_task = group.create_task(informer.run())
        collector = group.create_task(
            LogCollector(cluster, store, informer=informer, retry_delay=0.01).run())
        await eventually(lambda: complete(store, ref()))
        collector.cancel()
        informer_task.cancel()
    assert store.read(ref()) == b"shared\n"


async def test_collectors_follow_clusters_added_while_running_and_stop_removed_ones(
        tmp_path) -> None:
    from cyclone.server.logs import LogCollectors

    store = LogStore(tmp_path / "logs")
    first, second = FakeLogCluster(), FakeLogCluster()
    for cluster, run in ((first, "run-a"), (second, "run-b")):
        pod = stage_pod(name=f"{run}-pod")
        pod["metadata"]["labels"]["workflowrun.cyclone.dev/name"] = run
        set_running(pod)
        cluster.put_pod(pod)
        cluster.write_log(NS, f"{run}-pod", "main", f"{run}\n".encode())
    collectors = LogCollectors(store, retry_delay=0.01)
    collectors.add_cluster("first", first)
    ref_a = LogRef(RunRef("devops", "proj", "wf", "run-a"), "build", "main")
    ref_b = LogRef(RunRef("devops", "proj", "wf", "run-b"), "build", "main")
    task = asyncio.create_task(collectors.run())
    try:
        await eventually(lambda: store.exists(ref_a) and store.read(ref_a) == b"run-a\n")
        collectors.add_cluster("second", second)
        await eventually(lambda: store.exists(ref_b) and store.read(ref_b) == b"run-b\n")
        collectors.remove_cluster("first")
        assert collectors.clusters == ["second"]
        cluster_a_reads = len(first.log_reads)
        await eventually(lambda: first.open_log_streams == 0 and not first.watching)
        first.write_log(NS, "run-a-pod", "main", b"more\n")
        assert store.read(ref_a) == b"run-a\n"
        assert len(first.log_reads) == cluster_a_reads
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_integration_secrets_and_rendered_secret_references_are_masked(tmp_path) -> None:
    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    meta = "cyclone-devops"
    cluster.put_secret(meta, "github", {"integration": json.dumps({
        "type": "SCM", "scm": {"type": "GitHub", "server": "https://github.com",
                               "user": "bot", "token": "ghp_integration_tok"}})},
        labels={"integration.cyclone.dev/type": "SCM"})
    cluster.put_secret(meta, "deploy-key", {"key": "deploy-KEY-123"})
    cluster.put_secret(meta, "unrelated", {"key": "not-referenced"})
    cluster.put_secret("cyclone-other", "theirs", {"key": "other-tenant-secret"})
    cluster.put_object("Stage", meta, "build", {"pod": {"spec": {"containers": [{
        "image": "x", "env": [
            {"name": "KEY", "value": "${secrets.cyclone-devops:deploy-key/data.key}"},
            {"name": "GUESS", "value": "${secrets.cyclone-other:theirs/data.key}"}],
    }]}}})
    cluster.open_control_cluster("devops", NS)
    line = (b"clone https://github.com as bot with ghp_integration_tok; "
            b"deploy with deploy-KEY-123; not-referenced stays; other-tenant-secret too\n")
    assert await collected_log(cluster, store, NS, line) == (
        b"clone https://github.com as bot with ***; deploy with ***; not-referenced stays; "
        b"other-tenant-secret too\n")


async def collected_log(cluster: FakeLogCluster, store: LogStore, namespace: str,
                        line: bytes) -> bytes:
    """What the store keeps of `line`, printed by a stage pod of tenant devops's run that
    runs in `namespace` of the control cluster."""
    pod = stage_pod(namespace=namespace)
    name = pod["metadata"]["name"]
    set_running(pod)
    cluster.put_pod(pod)
    async with collecting(cluster, store):
        cluster.write_log(namespace, name, "main", line)
        set_succeeded(pod)
        cluster.put_pod(pod)
        cluster.end_logs(namespace, name, "main")
        await eventually(lambda: complete(store, ref()))
    return store.read(ref())


@pytest.mark.parametrize("namespace", [
    "cyclone-devops-x",       # tenant devops-x's own namespace: a prefix is not ownership
    "cyclone-devops-worker",  # a workload namespace devops has not opened
])
async def test_a_pod_outside_its_claimed_tenants_places_is_not_masked_with_its_secrets(
        tmp_path, namespace) -> None:
    """Masking with another tenant's values would let a pod test guesses of them."""
    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    cluster.put_secret("cyclone-devops", "github", {"integration": json.dumps({
        "type": "SCM", "scm": {"type": "GitHub", "server": "https://github.com",
                               "user": "bot", "token": "ghp_integration_tok"}})},
        labels={"integration.cyclone.dev/type": "SCM"})
    if namespace == "cyclone-devops-x":
        cluster.open_control_cluster("devops", NS)
    line = b"guess: ghp_integration_tok\n"
    assert await collected_log(cluster, store, namespace, line) == line


async def test_a_retried_stage_continues_its_log_after_a_banner(tmp_path) -> None:
    cluster, store = FakeLogCluster(), LogStore(tmp_path / "logs")
    first = stage_pod(name="wf-build-1")
    first["metadata"]["annotations"]["stage.cyclone.dev/attempt"] = "1"
    set_running(first)
    cluster.put_pod(first)
    cluster.write_log(NS, "wf-build-1", "main", b"try 1\n")
    async with collecting(cluster, store):
        set_succeeded(first)
        cluster.put_pod(first)
        cluster.end_logs(NS, "wf-build-1", "main")
        await eventually(lambda: complete(store, ref()))
        second = stage_pod(name="wf-build-2")
        second["metadata"]["annotations"]["stage.cyclone.dev/attempt"] = "2"
        set_running(second)
        cluster.put_pod(second)
        cluster.write_log(NS, "wf-build-2", "main", b"try 2\n")
        set_succeeded(second)
        cluster.put_pod(second)
        cluster.end_logs(NS, "wf-build-2", "main")
        await eventually(lambda: complete(store, ref())
                         and store.read(ref()).endswith(b"try 2\n"))
    assert store.read(ref()) == b"try 1\n\n==> attempt 2, pod wf-build-2 <==\ntry 2\n"
    async with collecting(cluster, store) as collector:
        await eventually(lambda: collector.pods_examined >= 2)
    assert collector.follows_started == 0
    assert store.read(ref()).count(b"try 2") == 1
