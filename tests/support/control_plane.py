"""Real Kubernetes control planes for tests (see `cyclone.devcluster`).

One plane is shared by the whole session (`session_plane()`, the `control_plane` fixture);
`extra_plane()` starts further ones (multi-cluster tests). Without the binaries the tests
that need a plane skip with the reason, or fail when `CYCLONE_REQUIRE_K8S=1`.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from cyclone.devcluster import ControlPlane, ControlPlaneError, missing_binaries
from cyclone.devcluster import plane as plane_module
from cyclone.kube.remote import RemoteCluster

_session: ControlPlane | None = None
_session_error: str | None = None


def k8s_required() -> bool:
    return os.environ.get("CYCLONE_REQUIRE_K8S") == "1"


UNAVAILABLE_REASONS: set[str] = set()
"""Every reason `unavailable` gave: a test that skips with one of them is a real-cluster
case, marked `k8s` or not (`support.k8s_summary` counts it)."""


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it when a real cluster is required."""
    UNAVAILABLE_REASONS.add(reason)
    if k8s_required():
        pytest.fail(f"CYCLONE_REQUIRE_K8S=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _die_with_parent() -> None:
    """Children of the test process end with it even when it is killed."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def start_plane(name: str, pod_network: bool = False) -> ControlPlane:
    """Start a plane in a fresh temporary directory (removed again by `stop_plane`);
    `pod_network`: see `cyclone.devcluster.plane`."""
    missing = missing_binaries()
    if missing:
        unavailable(
            f"Kubernetes control-plane binaries missing ({', '.join(missing)}); "
            "run `bash scripts/control-plane/build.sh`"
        )
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    try:
        return plane_module.start_control_plane(
            workdir, name=name, preexec_fn=_die_with_parent, pod_network=pod_network
        )
    except ControlPlaneError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def stop_plane(plane: ControlPlane) -> None:
    plane.stop()
    shutil.rmtree(plane.workdir, ignore_errors=True)


def session_plane() -> ControlPlane:
    """The plane shared by the session, started on first use and stopped at exit."""
    global _session, _session_error
    if _session is None:
        if _session_error is not None:
            unavailable(_session_error)
        try:
            _session = start_plane("cyclone-test")
        except ControlPlaneError as exc:
            _session_error = f"the control plane did not start: {exc}"
            unavailable(_session_error)
        atexit.register(_stop_session)
    assert _session is not None
    if not _session.alive():
        pytest.fail("the session control plane has died (see its logs in "
                    f"{_session.workdir / 'logs'})", pytrace=False)
    return _session


def _stop_session() -> None:
    global _session
    if _session is not None:
        stop_plane(_session)
        _session = None


@contextmanager
def extra_plane(name: str = "cyclone-extra", pod_network: bool = False
                ) -> Iterator[ControlPlane]:
    """A second (third…) plane for the duration of the block."""
    plane = start_plane(name, pod_network)
    try:
        yield plane
    finally:
        stop_plane(plane)


@asynccontextmanager
async def remote_cluster_on(plane: ControlPlane, **options: object) -> AsyncIterator[RemoteCluster]:
    cluster = RemoteCluster.from_kubeconfig(plane.kubeconfig, **options)  # type: ignore[arg-type]
    try:
        yield cluster
    finally:
        await cluster.close()


@asynccontextmanager
async def kube_cluster(scratch: Path) -> AsyncIterator[RemoteCluster]:
    """The contract-suite factory: a RemoteCluster on the session plane."""
    async with remote_cluster_on(session_plane()) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    yield session_plane()


@pytest.fixture
async def remote_cluster(control_plane: ControlPlane) -> AsyncIterator[RemoteCluster]:
    async with remote_cluster_on(control_plane) as cluster:
        yield cluster
