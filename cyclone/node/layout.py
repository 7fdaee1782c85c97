"""Where the node agent keeps what it needs on disk, all under one data directory.

Everything here can be rebuilt from the cluster plus these files: the agent holds no other
state, so a killed agent restarted on the same data directory carries on where it stopped.

Only the agent's own user may look inside: the data directory, `logs/` (raw container
logs, which may hold secrets a stage printed) and `pods/` are 0700, and every stored log is
0600. Containers reach their volumes through the sandbox's bind mounts, never by walking
these directories.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class NodeLayout:
    data_dir: Path

    def prepare(self) -> None:
        """Create the private directories, and bring existing ones and the stored logs to
        0700/0600 (the contents of `pods/` are left as they are: running containers use
        them)."""
        for directory in (self.data_dir, self.logs_dir, self.data_dir / "pods"):
            directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            _chmod(directory, DIR_MODE)
        for root, dirnames, filenames in os.walk(self.logs_dir):
            for name in dirnames:
                _chmod(Path(root, name), DIR_MODE)
            for name in filenames:
                _chmod(Path(root, name), FILE_MODE)

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        return self.logs_dir / namespace / pod / f"{container}.log"

    def pod_logs_dir(self, namespace: str, pod: str) -> Path:
        return self.logs_dir / namespace / pod

    def pod_dir(self, uid: str) -> Path:
        return self.data_dir / "pods" / uid

    def container_dir(self, uid: str, container: str) -> Path:
        return self.pod_dir(uid) / "containers" / container

    def pod_volume_dir(self, uid: str, volume_type: str, volume: str) -> Path:
        return self.pod_dir(uid) / "volumes" / volume_type / volume

    def pvc_dir(self, namespace: str, claim: str) -> Path:
        return self.data_dir / "volumes" / "pvc" / namespace / claim


def _chmod(path: Path, mode: int) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)
