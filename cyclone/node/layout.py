"""Where the node agent keeps what it needs on disk, all under one data directory.

Everything here can be rebuilt from the cluster plus these files: the agent holds no other
state, so a killed agent restarted on the same data directory carries on where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodeLayout:
    data_dir: Path

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
