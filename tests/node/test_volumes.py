"""Volume planning and container binds, without a cluster."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from cyclone.kube.errors import NotFound
from cyclone.node.env import ContainerConfigError
from cyclone.node.layout import NodeLayout
from cyclone.node.volumes import (
    Bind,
    PodVolume,
    container_mounts,
    prepare_sub_paths,
    resolve_pod_volumes,
    write_pod_volumes,
)


async def fetch_secret(namespace: str, name: str) -> dict:
    if name != "tls":
        raise NotFound(name)
    return {"data": {"crt": base64.b64encode(b"CERT").decode(),
                     "key": base64.b64encode(b"KEY").decode()}}


async def fetch_config_map(namespace: str, name: str) -> dict:
    if name != "conf":
        raise NotFound(name)
    return {"data": {"app.ini": "x=1"}, "binaryData": {"blob": base64.b64encode(b"\0").decode()}}


def pod(volumes: list[dict]) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"},
            "spec": {"volumes": volumes}}


async def resolve(layout: NodeLayout, volumes: list[dict]) -> dict[str, PodVolume]:
    return await resolve_pod_volumes(
        pod(volumes), layout, fetch_secret=fetch_secret, fetch_config_map=fetch_config_map
    )


async def test_each_volume_type_gets_its_host_directory(tmp_path: Path) -> None:
    layout = NodeLayout(tmp_path)
    volumes = await resolve(layout, [
        {"name": "claim", "persistentVolumeClaim": {"claimName": "cyclone-pvc-system"}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "host", "hostPath": {"path": "/etc"}},
        {"name": "secret", "secret": {"secretName": "tls"}},
        {"name": "conf", "configMap": {"name": "conf", "defaultMode": 0o400,
                                       "items": [{"key": "app.ini", "path": "etc/app.ini",
                                                  "mode": 0o640}]}},
    ])
    assert volumes["claim"].host_path == tmp_path / "volumes/pvc/ns/cyclone-pvc-system"
    assert volumes["scratch"].host_path == tmp_path / "pods/uid-1/volumes/empty-dir/scratch"
    assert volumes["host"].host_path == Path("/etc")

    write_pod_volumes({k: v for k, v in volumes.items() if k != "host"})
    secret_dir = volumes["secret"].host_path
    assert (secret_dir / "crt").read_bytes() == b"CERT"
    assert (secret_dir / "key").stat().st_mode & 0o777 == 0o644
    conf = volumes["conf"].host_path / "etc" / "app.ini"
    assert conf.read_text() == "x=1"
    assert conf.stat().st_mode & 0o777 == 0o640
    assert not (volumes["conf"].host_path / "blob").exists()


async def test_missing_secret_volume_is_a_config_error_unless_optional(tmp_path: Path) -> None:
    layout = NodeLayout(tmp_path)
    with pytest.raises(ContainerConfigError):
        await resolve(layout, [{"name": "s", "secret": {"secretName": "absent"}}])
    volumes = await resolve(
        layout, [{"name": "s", "secret": {"secretName": "absent", "optional": True}}]
    )
    assert volumes["s"].files == {}


async def test_projected_volume_skips_what_the_agent_cannot_provide(tmp_path: Path) -> None:
    volumes = await resolve(NodeLayout(tmp_path), [{"name": "kube-api-access", "projected": {
        "sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"configMap": {"name": "conf"}},
        ]}}])
    assert set(volumes["kube-api-access"].files or {}) == {"app.ini", "blob"}


def test_mounts_resolve_sub_paths_and_order_parents_first(tmp_path: Path) -> None:
    volumes = {"data": PodVolume("data", tmp_path / "pvc")}
    container = {"volumeMounts": [
        {"name": "data", "mountPath": "/workspace/deep/inner", "subPath": "b"},
        {"name": "data", "mountPath": "/workspace", "subPathExpr": "runs/$(RUN)",
         "readOnly": True},
    ]}
    mounts = container_mounts(container, volumes, {"RUN": "r1"}, tmp_path / "term")
    assert mounts.binds[:2] == [
        Bind(tmp_path / "pvc" / "runs" / "r1", "/workspace", True, within=tmp_path / "pvc"),
        Bind(tmp_path / "pvc" / "b", "/workspace/deep/inner", False, within=tmp_path / "pvc"),
    ]


def test_termination_message_path_resolves_through_the_deepest_mount(tmp_path: Path) -> None:
    volumes = {"data": PodVolume("data", tmp_path / "pvc"),
               "results": PodVolume("results", tmp_path / "res")}
    container = {
        "terminationMessagePath": "/cyclone/results/__result__",
        "volumeMounts": [{"name": "data", "mountPath": "/cyclone"},
                         {"name": "results", "mountPath": "/cyclone/results", "subPath": "s1"}],
    }
    mounts = container_mounts(container, volumes, {}, tmp_path / "term")
    assert mounts.termination_message_host_path == tmp_path / "res" / "s1" / "__result__"
    assert all(b.target != "/cyclone/results/__result__" for b in mounts.binds)


def test_uncovered_termination_message_path_gets_a_private_file(tmp_path: Path) -> None:
    mounts = container_mounts({}, {}, {}, tmp_path / "term")
    assert mounts.termination_message_host_path == tmp_path / "term"
    assert mounts.binds == [Bind(tmp_path / "term", "/dev/termination-log")]


@pytest.mark.parametrize("sub_path", ["/abs", "../escape", "a/../../b"])
def test_sub_path_may_not_leave_the_volume(tmp_path: Path, sub_path: str) -> None:
    volumes = {"data": PodVolume("data", tmp_path)}
    container = {"volumeMounts": [{"name": "data", "mountPath": "/w", "subPath": sub_path}]}
    with pytest.raises(ContainerConfigError):
        container_mounts(container, volumes, {}, tmp_path / "term")


def test_mount_of_unknown_volume_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ContainerConfigError):
        container_mounts({"volumeMounts": [{"name": "x", "mountPath": "/x"}]}, {}, {},
                         tmp_path / "t")


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


@ROOT_ONLY
def test_agent_made_volumes_and_sub_paths_belong_to_the_sandbox_owner(tmp_path: Path) -> None:
    owner = (65534, 65534)
    host_dir = tmp_path / "host"
    volumes = {
        "data": PodVolume("data", tmp_path / "pvc"),
        "conf": PodVolume("conf", tmp_path / "conf", {"dir/app.ini": (b"x", 0o400)}),
        "host": PodVolume("host", host_dir, managed=False),
    }
    write_pod_volumes(volumes, owner)
    mounts = container_mounts(
        {"volumeMounts": [{"name": "data", "mountPath": "/w", "subPath": "runs/r1/out"},
                          {"name": "host", "mountPath": "/h", "subPath": "made"}]},
        volumes, {}, tmp_path / "term")
    prepare_sub_paths(mounts, owner)

    for path in (tmp_path / "pvc", tmp_path / "pvc" / "runs", tmp_path / "pvc" / "runs" / "r1",
                 tmp_path / "pvc" / "runs" / "r1" / "out", tmp_path / "conf" / "dir",
                 tmp_path / "conf" / "dir" / "app.ini"):
        assert (path.stat().st_uid, path.stat().st_gid) == owner, path
    assert (tmp_path / "conf" / "dir" / "app.ini").stat().st_mode & 0o777 == 0o400
    assert host_dir.stat().st_uid == 0 and (host_dir / "made").stat().st_uid == 0


@ROOT_ONLY
def test_a_symlink_planted_in_a_volume_never_leads_the_agent_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    volumes = {"data": PodVolume("data", tmp_path / "pvc")}
    write_pod_volumes(volumes, (65534, 65534))
    (tmp_path / "pvc" / "runs").symlink_to(outside)
    mounts = container_mounts(
        {"volumeMounts": [{"name": "data", "mountPath": "/w", "subPath": "runs/r1"}]},
        volumes, {}, tmp_path / "term")

    with pytest.raises(ContainerConfigError, match="symlink"):
        prepare_sub_paths(mounts, (65534, 65534))
    assert list(outside.iterdir()) == [] and outside.stat().st_uid == 0
