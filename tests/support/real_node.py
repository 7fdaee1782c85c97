"""A genuine node (kubelet + containerd + runc) for tests, on a control plane of its own.

The node runs beside an `extra_plane` with Cyclone's CRDs installed, never beside the session
plane (whose pods node agents run). Every node runs kube-proxy and the cluster DNS;
`real_node_cluster` also gives its pods the apiserver (`pod_network`: the `kubernetes`
Service and the in-cluster configuration), as a cluster an operator installs Cyclone on
does. Only one real node runs on a machine at a time: starting one waits for the
machine-wide lock of `cyclone.devcluster.node`. Without the binaries, the host tools or the
images, the tests skip with what is missing, or fail when `CYCLONE_REQUIRE_K8S=1`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cyclone.devcluster import ControlPlane
from cyclone.devcluster.node import (
    DEFAULT_IMAGES,
    HostRunsKubernetes,
    NodeError,
    NodeLock,
    RealNode,
    missing_node_parts,
    start_node,
)
from support.control_plane import _die_with_parent, extra_plane, remote_cluster_on, unavailable
from support.kube_engine import install_crds


def require_node_parts(images: Path = DEFAULT_IMAGES) -> None:
    """Skip (or fail under CYCLONE_REQUIRE_K8S=1) when this machine cannot run a node."""
    missing = missing_node_parts(images=images)
    if missing:
        unavailable(
            f"real-node parts missing ({', '.join(missing)}); run `make node-deps images` "
            "and `bash scripts/control-plane/build.sh`"
        )


async def _install_crds(plane: ControlPlane) -> None:
    async with remote_cluster_on(plane) as cluster:
        await install_crds(cluster)


@contextmanager
def real_node_plane(name: str = "cyclone-realnode", images: Path = DEFAULT_IMAGES, *,
                    plane: ControlPlane | None = None, lock: NodeLock | None = None,
                    only_images: tuple[str, ...] | None = None, pod_network: bool = False,
                    install_crds: bool = True,
                    ) -> Iterator[tuple[ControlPlane, RealNode]]:
    """A plane with Cyclone's CRDs and a Ready real node; both stopped (host restored) after.
    With `plane`, the node joins that one (left running) instead of a new one; with `lock`
    (held by the caller), it does not wait for the machine-wide lock itself; `only_images`
    limits the archives imported (all of `images` by default); `pod_network` starts the new
    plane so that pods reach its apiserver (`cyclone.devcluster.plane`); without
    `install_crds` the plane has no Cyclone CRDs (e.g. for `helm install` to bring them)."""
    require_node_parts(images)
    with contextlib.ExitStack() as stack:
        if plane is None:
            plane = stack.enter_context(extra_plane(name, pod_network=pod_network))
        if install_crds:
            asyncio.run(_install_crds(plane))
        workdir = Path(tempfile.mkdtemp(prefix="cyclone-node-"))
        try:
            try:
                node = start_node(plane, workdir, images, lock=lock, only_images=only_images,
                                  preexec_fn=_die_with_parent)
            except HostRunsKubernetes as exc:
                unavailable(str(exc))
            except NodeError as exc:
                failure = f"the real node did not start: {exc}"
            else:
                failure = ""
            if failure:
                pytest.fail(failure, pytrace=False)
            try:
                yield plane, node
            finally:
                node.stop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def real_node() -> Iterator[tuple[ControlPlane, RealNode]]:
    with real_node_plane() as pair:
        yield pair


@pytest.fixture(scope="module")
def real_node_cluster() -> Iterator[tuple[ControlPlane, RealNode]]:
    """A real node whose pods reach the apiserver through the `kubernetes` Service."""
    with real_node_plane("cyclone-cluster", pod_network=True) as pair:
        yield pair
