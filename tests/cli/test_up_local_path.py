"""`cyclone up --kubeconfig` on a cluster without a storage provisioner: its local-path
provisioner binds the tenant PVC, on this machine's directory or the node agent's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support.clusters import eventually
from support.control_plane import extra_plane, remote_cluster_on
from support.kube_engine import install_crds

from cyclone.api import keys
from cyclone.devcluster import ControlPlane
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.remote import RemoteCluster
from cyclone.up import UpError, UpOptions, local_path_volumes, runs_local_path_provisioner, up

NAMESPACE = keys.tenant_namespace(keys.DEFAULT_TENANT)
PVC = keys.tenant_pvc_name(keys.DEFAULT_TENANT)
NODE = socket.gethostname().lower() or "cyclone-node"


def test_the_provisioner_runs_by_default_only_for_a_node_agent_on_a_real_api_server(tmp_path):
    assert runs_local_path_provisioner(UpOptions(kubeconfig="k", node_agent=True))
    assert not runs_local_path_provisioner(UpOptions(kubeconfig="k"))
    assert not runs_local_path_provisioner(UpOptions())
    assert not runs_local_path_provisioner(
        UpOptions(kubeconfig="k", node_agent=True, local_path_provisioner=False))
    assert local_path_volumes(UpOptions(data_dir=str(tmp_path), kubeconfig="k",
                                        local_path_provisioner=True)) == tmp_path / "volumes"
    assert local_path_volumes(UpOptions(kubeconfig="k", node_agent=True)) is None


def test_local_path_options_that_do_not_fit_are_refused_in_one_line(tmp_path):
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "cyclone.cli.main", "up", "--data-dir", str(data_dir),
         "--port", "0", "--runtime", "fake", "--local-path-provisioner"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "CYCLONE_CONFIG": str(tmp_path / "config.yaml")})
    assert result.returncode == 1
    assert result.stderr == "error: cyclone up: --local-path-provisioner is used only with " \
                            "--kubeconfig (the embedded cluster needs no volumes)\n"
    assert not (data_dir / "cluster.db").exists()
    with pytest.raises(UpError, match=r"^--local-path-dir is used only with "
                                      r"--local-path-provisioner$"):
        local_path_volumes(UpOptions(kubeconfig="k", local_path_dir="/v"))
    with pytest.raises(UpError, match=r"^--local-path-dir cannot be used with --node-agent: "
                                      r"the node agent keeps claims under "):
        local_path_volumes(UpOptions(kubeconfig="k", node_agent=True,
                                     local_path_provisioner=True, local_path_dir="/v"))


def test_the_engine_refuses_a_relative_volumes_dir_in_one_line(tmp_path):
    store = tmp_path / "store.db"
    result = subprocess.run(
        [sys.executable, "-m", "cyclone.cli.main", "engine", "--embedded", str(store),
         "--no-leader-elect", "--metrics-port", "0", "--local-path-provisioner",
         "--local-path-dir", "volumes"],
        capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "error: cyclone engine: --local-path-dir must be an absolute " \
                            "path of the node, not 'volumes'\n"
    assert not store.exists()


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with extra_plane("cyclone-up-volumes") as started:
        yield started


async def no_claim_or_volume_left(cluster: RemoteCluster) -> None:
    """Cyclone's CRDs installed, and no tenant claim or volume left by an earlier case: gone,
    not only deleted (their protection finalizers keep an old, bound claim readable a while)."""
    await install_crds(cluster)
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.PERSISTENT_VOLUME_CLAIM, PVC, NAMESPACE)
    for volume in (await cluster.list(kinds.PERSISTENT_VOLUME)).items:
        with contextlib.suppress(NotFound):
            await cluster.delete(kinds.PERSISTENT_VOLUME, volume["metadata"]["name"])

    async def gone() -> bool:
        try:
            await cluster.get(kinds.PERSISTENT_VOLUME_CLAIM, PVC, NAMESPACE)
        except NotFound:
            return not (await cluster.list(kinds.PERSISTENT_VOLUME)).items
        return False

    await eventually(gone, timeout=60, interval=0.2)


@contextlib.asynccontextmanager
async def running_up(plane: ControlPlane, options: UpOptions) -> AsyncIterator[RemoteCluster]:
    """`up` (engine, no API server) on the plane, with no tenant PVC or volume left over."""
    async with remote_cluster_on(plane) as cluster:
        await no_claim_or_volume_left(cluster)
        with contextlib.suppress(NotFound):
            await cluster.delete(kinds.NODE, NODE)
        task = asyncio.create_task(up(options))
        try:
            yield cluster
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(NotFound):
                await cluster.delete(kinds.NODE, NODE)


async def bound_volume(cluster: RemoteCluster) -> dict:
    async def bound() -> dict | None:
        with contextlib.suppress(NotFound):
            claim = await cluster.get(kinds.PERSISTENT_VOLUME_CLAIM, PVC, NAMESPACE)
            if (claim.get("status") or {}).get("phase") == "Bound":
                return claim
        return None

    claim = await eventually(bound, timeout=60, interval=0.2)
    return await cluster.get(kinds.PERSISTENT_VOLUME, claim["spec"]["volumeName"])


def volume_uid(volume: dict) -> str:
    return volume["spec"]["claimRef"]["uid"]


@pytest.mark.k8s
async def test_up_with_the_local_path_provisioner_binds_the_tenant_claim_under_its_dir(
        plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYCLONE_CONFIG", str(tmp_path / "cli-config.yaml"))
    options = UpOptions(data_dir=str(tmp_path / "up"), port=0, runtime="fake",
                        kubeconfig=str(plane.kubeconfig), local_path_provisioner=True,
                        local_path_dir=str(tmp_path / "volumes"))
    async with running_up(plane, options) as cluster:
        volume = await bound_volume(cluster)
    assert volume["spec"]["hostPath"] == {
        "path": str(tmp_path / "volumes" / "pvc" / NAMESPACE / f"{PVC}-{volume_uid(volume)}"),
        "type": "DirectoryOrCreate"}
    assert "nodeAffinity" not in volume["spec"]


@pytest.mark.k8s
async def test_up_with_a_node_agent_binds_the_tenant_claim_on_the_agents_node(
        plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYCLONE_CONFIG", str(tmp_path / "cli-config.yaml"))
    options = UpOptions(data_dir=str(tmp_path / "up"), port=0, runtime="fake",
                        kubeconfig=str(plane.kubeconfig), node_agent=True)
    async with running_up(plane, options) as cluster:
        volume = await bound_volume(cluster)
    data_dir = (tmp_path / "up").resolve()
    assert volume["spec"]["hostPath"]["path"] == str(
        data_dir / "node" / "volumes" / "pvc" / NAMESPACE / PVC)
    terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [NODE]


@pytest.mark.k8s
@pytest.mark.parametrize("command", [
    ("engine", "--no-leader-elect", "--metrics-port", "0", "--local-path-provisioner"),
    ("local-path-provisioner",),
])
async def test_the_engine_or_the_provisioner_alone_binds_a_claim_under_its_dir(
        plane: ControlPlane, tmp_path: Path, command: tuple[str, ...]) -> None:
    async with remote_cluster_on(plane) as cluster:
        await no_claim_or_volume_left(cluster)
        engine = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cyclone.cli.main", *command, "--kubeconfig",
            str(plane.kubeconfig), "--local-path-dir", str(tmp_path / "volumes"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            await eventually(lambda: _namespace_exists(cluster), timeout=30)
            await cluster.create({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": PVC, "namespace": NAMESPACE},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}})
            volume = await bound_volume(cluster)
        finally:
            engine.terminate()
            await asyncio.wait_for(engine.wait(), 30)
    assert volume["spec"]["hostPath"]["path"] == str(tmp_path / "volumes" / "pvc" / NAMESPACE
                                                     / f"{PVC}-{volume_uid(volume)}")


async def _namespace_exists(cluster: RemoteCluster) -> bool:
    try:
        await cluster.get(kinds.NAMESPACE, NAMESPACE)
    except NotFound:
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": NAMESPACE}})
    return True
