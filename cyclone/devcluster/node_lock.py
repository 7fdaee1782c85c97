"""The machine-wide lock that makes one real node at a time, the node's errors, and the
private directory that holds the lock and the node's journal of host changes.

A kubelet bind-mounts over /var/log/pods and friends, owns the `kubepods` cgroups and the CNI
bridge: two on one machine clash, so every start of a real node holds this flock until it
stops (see `node.start_node`).

Root acts on what `STATE_DIR` holds (the journal lists sysctls to write, pids to kill and
mounts to undo), so the directory is used only when nobody else can write to it: a real
directory, reached through no symlink, owned by the effective uid with mode 0700.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from pathlib import Path

STATE_DIR = Path("/run/cyclone-real-node")
LOCK_NAME = "lock"
LOCK_FILE = STATE_DIR / LOCK_NAME


class NodeError(RuntimeError):
    """The node could not be started or stopped cleanly."""


class NodeBusy(NodeError):
    """Another real node holds the machine-wide lock."""


class HostRunsKubernetes(NodeError):
    """The host's iptables already hold KUBE-* chains: another Kubernetes runs here, and a
    node's kube-proxy would rewrite its Service rules."""


def open_state_dir(path: Path = STATE_DIR) -> int:
    """A descriptor of `path` (created with mode 0700 when missing), or `NodeError` unless
    it is a directory reached through no symlink, owned by our uid, with mode 0700."""
    uid = os.geteuid()
    if not path.is_absolute() or os.path.realpath(path) != str(path):
        raise NodeError(f"refusing the real node's state directory {path}: "
                        "its path is not absolute or goes through a symlink")
    created = True
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        created = False
    except OSError as exc:
        raise NodeError(
            f"cannot create the real node's state directory {path}: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise NodeError(f"refusing the real node's state directory {path}: "
                        f"not a directory ({exc.strerror})") from None
    if created:
        os.fchmod(fd, 0o700)
    info = os.fstat(fd)
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != uid or mode != 0o700:
        os.close(fd)
        raise NodeError(f"refusing the real node's state directory {path}: owned by uid "
                        f"{info.st_uid} with mode {mode:04o}, not uid {uid} with mode 0700")
    return fd


def open_private_file(path: Path, flags: int, mode: int = 0o600) -> int:
    """Open `path`, a file in a checked state directory, never through a symlink."""
    directory = open_state_dir(path.parent)
    try:
        return os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=directory)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise NodeError(f"refusing {path}: {exc.strerror}") from None
    finally:
        os.close(directory)


class NodeLock:
    """The machine-wide flock that makes one real node at a time."""

    def __init__(self, path: Path = LOCK_FILE) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock (for ever without `timeout`: a blocked flock is woken as soon as
        the holder lets go, ahead of anyone who asks later)."""
        fd = open_private_file(self.path, os.O_RDWR | os.O_CREAT)
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise NodeBusy(
                        f"another real node holds {self.path} (waited {timeout:g}s)") from None
                time.sleep(0.1)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
