"""The images of a real node: its snapshotter, and the OCI archives imported into its
containerd (the sandbox image first, the large ones while the kubelet starts up)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

from cyclone.devcluster.node_config import NodeLayout
from cyclone.devcluster.node_lock import NodeError


def archives_to_import(images: Path, only: tuple[str, ...] | None) -> list[Path]:
    """The archives to import, the sandbox (pause) image first."""
    archives = sorted(images.glob("*.oci.tar"), key=lambda a: (a.name != "pause.oci.tar", a.name))
    if only is not None:
        archives = [a for a in archives if a.name.removesuffix(".oci.tar") in {"pause", *only}]
    return archives


def snapshotter_for(workdir: Path) -> str:
    """overlayfs where this filesystem can hold an overlay (not e.g. overlay-on-overlay)."""
    probe = workdir / "overlay-probe"
    parts = [probe / p for p in ("lower", "upper", "work", "merged")]
    for part in parts:
        part.mkdir(parents=True, exist_ok=True)
    lower, upper, work, merged = parts
    result = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)],
        capture_output=True)
    if result.returncode == 0:
        subprocess.run(["umount", str(merged)], capture_output=True)
    shutil.rmtree(probe, ignore_errors=True)
    return "overlayfs" if result.returncode == 0 else "native"


def ctr(layout: NodeLayout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ctr", f"--address={layout.socket}", *args],
                          capture_output=True, text=True, timeout=300)


def import_archives(layout: NodeLayout, snapshotter: str, archives: list[Path],
                    log_path: Path) -> None:
    with log_path.open("a") as log:
        for archive in archives:
            result = ctr(layout, "--namespace=k8s.io", "images", "import",
                         f"--snapshotter={snapshotter}", str(archive))
            log.write(f"$ ctr images import {archive}\n{result.stdout}{result.stderr}")
            if result.returncode != 0:
                raise NodeError(f"importing {archive.name} failed: {result.stderr.strip()}")


class Importer(threading.Thread):
    """Imports the large archives while the kubelet starts up (it needs only the pause one)."""

    def __init__(self, layout: NodeLayout, snapshotter: str, archives: list[Path],
                 log_path: Path) -> None:
        super().__init__(name="node-image-import", daemon=True)
        self.layout, self.snapshotter, self.archives = layout, snapshotter, archives
        self.log_path = log_path
        self.error = ""

    def run(self) -> None:
        try:
            import_archives(self.layout, self.snapshotter, self.archives, self.log_path)
        except (NodeError, OSError, subprocess.SubprocessError) as exc:
            self.error = str(exc)
