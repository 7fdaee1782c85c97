"""The local-path provisioner: pending claims get hostPath volumes the scheduler accepts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clusters import eventually
from support.control_plane import unavailable

from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.remote import RemoteCluster
from cyclone.node.layout import NodeLayout
from cyclone.node.provisioner import (
    PROVISIONED_BY_LABEL,
    LocalPathProvisioner,
    claim_dir,
    make_claim_dir,
    volume_for_claim,
    volume_name,
    wants_volume,
)


def claim(name: str = "data", namespace: str = "ns", **spec: object) -> dict:
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, "uid": "u-1"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "2Gi"}}, **spec},
        "status": {"phase": "Pending"},
    }


def test_volume_points_at_the_agent_claim_directory_and_is_prebound(tmp_path: Path) -> None:
    volume = volume_for_claim(claim(), NodeLayout(tmp_path))
    assert volume["metadata"]["name"] == "pvc-u-1"
    assert volume["spec"]["hostPath"]["path"] == str(NodeLayout(tmp_path).pvc_dir("ns", "data"))
    assert volume["spec"]["hostPath"]["path"] == str(tmp_path / "volumes/pvc/ns/data")
    assert volume["spec"]["claimRef"] == {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "namespace": "ns", "name": "data", "uid": "u-1",
    }
    assert volume["spec"]["capacity"] == {"storage": "2Gi"}
    assert volume["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert "nodeAffinity" not in volume["spec"]


def test_a_claim_made_again_under_the_same_name_never_gets_the_old_ones_directory(
        tmp_path: Path) -> None:
    first = volume_for_claim(claim(), tmp_path)
    again = claim()
    again["metadata"]["uid"] = "u-2"
    second = volume_for_claim(again, tmp_path)
    assert first["spec"]["hostPath"]["path"] == str(tmp_path / "pvc/ns/data-u-1")
    assert second["spec"]["hostPath"]["path"] == str(tmp_path / "pvc/ns/data-u-2")


def test_volume_is_pinned_to_the_node_when_one_is_named(tmp_path: Path) -> None:
    volume = volume_for_claim(claim(), NodeLayout(tmp_path), node_name="agent-1")
    terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["agent-1"]}]}]


@pytest.mark.parametrize(("candidate", "wanted"), [
    (claim(), True),
    (claim(storageClassName=""), True),
    (claim(storageClassName="fast-ssd"), False),
    (claim(volumeName="pv-1"), False),
    ({**claim(), "status": {"phase": "Bound"}}, False),
    ({**claim(), "metadata": {**claim()["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z"}},
     False),
])
def test_only_pending_unbound_claims_of_served_classes_want_a_volume(
    candidate: dict, wanted: bool,
) -> None:
    assert wants_volume(candidate, frozenset({""})) is wanted


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_claim_directory_is_writable_by_every_uid_in_parents_no_one_else_enters(
        tmp_path: Path) -> None:
    os.umask(old := os.umask(0o077))
    try:
        directory = make_claim_dir(tmp_path / "volumes", "ns", "data", "u-1")
    finally:
        os.umask(old)
    assert directory == claim_dir(tmp_path / "volumes", "ns", "data", "u-1")
    assert mode(directory) == 0o777
    assert mode(directory.parent) == mode(directory.parent.parent) == 0o700
    (directory / "kept").write_text("data")
    assert make_claim_dir(tmp_path / "volumes", "ns", "data", "u-1") == directory
    assert (directory / "kept").read_text() == "data"


def test_a_non_root_pod_user_writes_its_volume_and_other_users_cannot_enter_the_parents(
        tmp_path: Path) -> None:
    """What a pod's bind mount gives a process of uid 10001 (the server): its own directory
    to write; a user of the node of another uid cannot enter the directories of claims."""
    if os.geteuid() != 0:
        unavailable("switching to other uids needs root")
    directory = make_claim_dir(tmp_path, "ns", "data", "u-1")
    make_claim_dir(tmp_path, "ns", "other", "u-2")

    def as_user(uid: int, script: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", "-c", script], cwd=cwd, user=uid, group=uid,
                              extra_groups=[], capture_output=True, text=True)

    wrote = as_user(10001, "echo written > probe && cat probe", directory)
    assert wrote.returncode == 0, wrote.stderr
    assert (directory / "probe").stat().st_uid == 10001
    listed = as_user(10002, "ls .", directory.parent)
    assert listed.returncode != 0 and "data-u-1" not in listed.stdout
    entered = as_user(10002, f"cat {(directory / 'probe').relative_to(tmp_path)}", tmp_path)
    assert entered.returncode != 0 and "written" not in entered.stdout


@pytest.fixture
async def namespace(remote_cluster: RemoteCluster) -> AsyncIterator[str]:
    name = f"pv-{secrets.token_hex(4)}"
    await remote_cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": name}})
    await eventually(lambda: remote_cluster.get(kinds.SERVICE_ACCOUNT, "default", name),
                     timeout=30)
    yield name
    with contextlib.suppress(NotFound):
        await remote_cluster.delete(kinds.NAMESPACE, name)


@pytest.mark.k8s
async def test_pending_claim_is_bound_to_a_provisioned_volume_and_released_on_delete(
    remote_cluster: RemoteCluster, namespace: str, tmp_path: Path,
) -> None:
    provisioner = LocalPathProvisioner(remote_cluster, tmp_path)
    created = await remote_cluster.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    }, namespace=namespace)
    pv_name = volume_name(created)

    async def phase() -> str:
        return (await remote_cluster.get(kinds.PERSISTENT_VOLUME_CLAIM, "data", namespace))[
            "status"].get("phase", "")

    async with asyncio.TaskGroup() as group:
        task = group.create_task(provisioner.run())
        await eventually(lambda: _equals(phase(), "Bound"), timeout=30)
        bound = await remote_cluster.get(kinds.PERSISTENT_VOLUME_CLAIM, "data", namespace)
        volume = await remote_cluster.get(kinds.PERSISTENT_VOLUME, pv_name)
        assert bound["spec"]["volumeName"] == pv_name
        assert volume["metadata"]["labels"][PROVISIONED_BY_LABEL] == "local-path"
        assert volume["spec"]["hostPath"]["path"] == str(tmp_path / "volumes/pvc" / namespace
                                                         / "data")

        await remote_cluster.delete(kinds.PERSISTENT_VOLUME_CLAIM, "data", namespace)

        async def volume_gone() -> bool:
            try:
                await remote_cluster.get(kinds.PERSISTENT_VOLUME, pv_name)
            except NotFound:
                return True
            return False

        await eventually(volume_gone, timeout=30)
        task.cancel()


@pytest.mark.k8s
async def test_a_volume_under_a_volumes_dir_is_made_writable_before_it_is_bound(
    remote_cluster: RemoteCluster, namespace: str, tmp_path: Path,
) -> None:
    volumes = tmp_path / "volumes"
    provisioner = LocalPathProvisioner(remote_cluster, volumes_dir=volumes)
    created = await remote_cluster.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    }, namespace=namespace)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(provisioner.run())
        await eventually(lambda: remote_cluster.get(kinds.PERSISTENT_VOLUME,
                                                    volume_name(created)), timeout=30)
        task.cancel()
    volume = await remote_cluster.get(kinds.PERSISTENT_VOLUME, volume_name(created))
    directory = Path(volume["spec"]["hostPath"]["path"])
    assert directory == claim_dir(volumes, namespace, "data", created["metadata"]["uid"])
    assert mode(directory) == 0o777
    assert mode(directory.parent) == 0o700
    await remote_cluster.delete(kinds.PERSISTENT_VOLUME, volume_name(created))


async def _equals(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]
