"""A genuine Kubernetes control plane on loopback (see `plane` for what it runs)."""

from cyclone.devcluster.plane import (
    BINARIES,
    ControlPlane,
    ControlPlaneError,
    default_bin_dir,
    missing_binaries,
    start_control_plane,
    write_kubeconfig,
)

__all__ = [
    "BINARIES",
    "ControlPlane",
    "ControlPlaneError",
    "default_bin_dir",
    "missing_binaries",
    "start_control_plane",
    "write_kubeconfig",
]
