"""The machine-wide lock that makes one real node at a time, and the node's errors.

A kubelet bind-mounts over /var/log/pods and friends, owns the `kubepods` cgroups and the CNI
bridge: two on one machine clash, so every start of a real node holds this flock until it
stops (see `node.start_node`).
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path
from typing import IO

LOCK_FILE = Path("/tmp/cyclone-real-node.lock")


class NodeError(RuntimeError):
    """The node could not be started or stopped cleanly."""


class NodeBusy(NodeError):
    """Another real node holds the machine-wide lock."""


class NodeLock:
    """The machine-wide flock that makes one real node at a time."""

    def __init__(self, path: Path = LOCK_FILE) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock (for ever without `timeout`: a blocked flock is woken as soon as
        the holder lets go, ahead of anyone who asks later)."""
        handle = self.path.open("a")
        if timeout is None:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._file = handle
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise NodeBusy(
                        f"another real node holds {self.path} (waited {timeout:g}s)") from None
                time.sleep(0.1)
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None
