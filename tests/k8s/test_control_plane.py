"""The test control plane: build script, launcher, a second independent plane, skip policy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support import control_plane as support

from cyclone.devcluster import ControlPlane, missing_binaries
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.remote import RemoteCluster

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "scripts" / "control-plane" / "build.sh"


def fake_cache(tmp_path: Path, present: tuple[str, ...]) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for name in present:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    return tmp_path


def test_build_script_does_nothing_when_binaries_are_cached(tmp_path: Path) -> None:
    cache = fake_cache(tmp_path, ("etcd", "kube-apiserver", "kube-controller-manager",
                                  "kube-scheduler", "kubelet", "kube-proxy", "kubectl"))
    result = subprocess.run(
        ["bash", str(BUILD)], env={**os.environ, "CYCLONE_K8S_CACHE": str(cache)},
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "binaries present" in result.stderr
    assert not (cache / "work").exists()


def test_build_script_fails_clearly_without_apt(tmp_path: Path) -> None:
    cache = fake_cache(tmp_path / "cache", ("etcd",))
    empty_path = tmp_path / "no-tools"
    empty_path.mkdir()
    result = subprocess.run(
        ["/bin/bash", str(BUILD)],
        env={"HOME": str(tmp_path), "PATH": str(empty_path), "CYCLONE_K8S_CACHE": str(cache)},
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode != 0
    assert "ERROR: apt-get not found" in result.stderr


def test_missing_binaries_are_reported_by_name(tmp_path: Path) -> None:
    fake_cache(tmp_path, ("etcd", "kube-scheduler"))
    assert missing_binaries(tmp_path / "bin") == ["kube-apiserver", "kube-controller-manager"]


@pytest.mark.parametrize(("required", "outcome"), [
    ("0", pytest.skip.Exception), ("1", pytest.fail.Exception),
])
def test_missing_binaries_skip_unless_a_real_cluster_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, required: str, outcome: type,
) -> None:
    monkeypatch.setenv("CYCLONE_K8S_BIN", str(fake_cache(tmp_path, ()) / "bin"))
    monkeypatch.setenv("CYCLONE_REQUIRE_K8S", required)
    with pytest.raises(outcome, match="binaries missing"):
        support.start_plane("never-started")


@pytest.mark.k8s
def test_session_plane_serves_with_its_kubeconfig_and_ca(control_plane: ControlPlane) -> None:
    assert control_plane.alive()
    assert control_plane.server.startswith("https://127.0.0.1:")
    assert control_plane.kubeconfig.is_file()
    assert control_plane.kubeconfig.stat().st_mode & 0o077 == 0


@pytest.mark.k8s
async def test_a_second_plane_is_independent_and_stops_cleanly(
    control_plane: ControlPlane,
) -> None:
    marker = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "only-on-the-second", "namespace": "default"}}
    with support.extra_plane("cyclone-second") as second:
        assert second.server != control_plane.server
        async with support.remote_cluster_on(second) as cluster:
            await cluster.create(marker)
            assert (await cluster.get(kinds.CONFIG_MAP, "only-on-the-second", "default"))
        async with support.remote_cluster_on(control_plane) as first:
            with pytest.raises(NotFound):
                await first.get(kinds.CONFIG_MAP, "only-on-the-second", "default")
        processes = list(second.processes.values())
    assert all(proc.poll() is not None for proc in processes)
    assert not second.workdir.exists()


@pytest.mark.k8s
async def test_controller_manager_gives_new_namespaces_a_default_service_account(
    remote_cluster: RemoteCluster,
) -> None:
    from support.clusters import eventually

    await remote_cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": "sa-check"}})
    try:
        account = await eventually(
            lambda: remote_cluster.get(kinds.SERVICE_ACCOUNT, "default", "sa-check"), timeout=30
        )
        assert account["metadata"]["name"] == "default"
    finally:
        await remote_cluster.delete(kinds.NAMESPACE, "sa-check")
