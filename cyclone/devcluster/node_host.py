"""What a real node changes on the host, written down before each change and undone after.

A kubelet and its runtime touch the machine outside their own directory: sysctls, bind
mounts over paths the kubelet hard-codes, directories, network namespaces, the CNI bridge,
the `kubepods` cgroups, and container processes whose shims outlive containerd. Each change
is appended to a journal file in `STATE_DIR` *before* it is made; `restore` undoes whatever
the journal lists, so a node that failed half-way, or whose test process was killed, is
cleaned up by `stop()` or by the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_DIR = Path("/tmp/cyclone-real-node")
JOURNAL = STATE_DIR / "host-changes.json"
CGROUP_ROOT = Path("/sys/fs/cgroup")
NETNS_DIR = Path("/run/netns")
SHIM_SOCKETS = Path("/run/containerd/s")
"""Where containerd's shims put their sockets, whatever containerd's state dir; a killed shim
leaves its socket behind."""

SYSCTLS = (
    "vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward",
)
"""What the kubelet rewrites on start (and the bridge plugin: ip_forward)."""


@dataclass
class HostChanges:
    """The journal of one node's changes to the host (see the module docstring)."""

    workdir: str
    socket: str = ""
    sysctls: dict[str, str] = field(default_factory=dict)
    created_dirs: list[str] = field(default_factory=list)
    bind_mounts: list[str] = field(default_factory=list)
    netns_before: list[str] | None = None
    shim_sockets_before: list[str] | None = None
    bridge: str = ""
    cgroups: list[str] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        temporary = JOURNAL.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1))
        temporary.replace(JOURNAL)

    def discard(self) -> None:
        """Remove the journal once everything is undone (only if it is this node's)."""
        current = HostChanges.load()
        if current is not None and current.workdir == self.workdir:
            JOURNAL.unlink(missing_ok=True)

    @classmethod
    def load(cls) -> HostChanges | None:
        try:
            return cls(**json.loads(JOURNAL.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            JOURNAL.unlink(missing_ok=True)
            return None

    def record_sysctls(self) -> None:
        self.sysctls = {key: read_sysctl(key) for key in SYSCTLS}
        self.save()

    def make_dirs(self, path: Path) -> None:
        """`mkdir -p path`, journaling each directory it creates."""
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for directory in reversed(missing):
            self.created_dirs.append(str(directory))
            self.save()
            directory.mkdir()

    def bind_mount(self, source: Path, target: Path) -> None:
        self.make_dirs(target)
        self.bind_mounts.append(str(target))
        self.save()
        _run(["mount", "--bind", str(source), str(target)])

    def record_runtime_dirs(self) -> None:
        """What /run/netns and the shim socket dir hold before the node adds its own."""
        self.netns_before = _listing(NETNS_DIR)
        self.shim_sockets_before = _listing(SHIM_SOCKETS)
        self.save()

    def create_bridge(self, name: str, address: str, prefix_length: int) -> None:
        """Create the bridge with its address (replacing one of that name a lost node left:
        under the node lock, no other node uses it)."""
        self.bridge = name
        self.save()
        if Path("/sys/class/net", name).exists():
            _run(["ip", "link", "delete", name])
        _run(["ip", "link", "add", "name", name, "type", "bridge"])
        _run(["ip", "addr", "add", f"{address}/{prefix_length}", "dev", name])
        _run(["ip", "link", "set", name, "up"])

    def record_cgroups(self) -> None:
        """The `kubepods` cgroups the kubelet is about to create (not those already there)."""
        self.cgroups = [
            str(h / "kubepods") for h in _hierarchies() if not (h / "kubepods").exists()
        ]
        self.save()

    def record_pid(self, component: str, pid: int) -> None:
        self.pids[component] = pid
        self.save()


def read_sysctl(key: str) -> str:
    return (Path("/proc/sys") / key.replace(".", "/")).read_text().strip()


def write_sysctl(key: str, value: str) -> None:
    (Path("/proc/sys") / key.replace(".", "/")).write_text(value + "\n")


def restore(changes: HostChanges) -> list[str]:
    """Undo everything `changes` lists; return what could not be undone (empty: all of it).

    Order matters: processes first (the node's own by recorded pid, then every process in
    its cgroups, then the container shims bound to its socket), so that nothing holds the
    namespaces and mounts removed next.
    """
    problems: list[str] = []
    for component, pid in changes.pids.items():
        if _is_ours(pid, changes.workdir):
            _kill(pid, signal.SIGKILL)
            if not _gone(pid, 10.0):
                problems.append(f"{component} (pid {pid}) did not exit")
    _kill_cgroup_members(changes.cgroups)
    if changes.socket:
        for pid in _shims(changes.socket):
            _kill(pid, signal.SIGKILL)
    if changes.netns_before is not None and NETNS_DIR.is_dir():
        before = set(changes.netns_before)
        for name in sorted(os.listdir(NETNS_DIR)):
            if name.startswith("cni-") and name not in before:
                path = NETNS_DIR / name
                _umount(str(path))
                with contextlib.suppress(OSError):
                    path.unlink()
    if changes.shim_sockets_before is not None:
        for name in set(_listing(SHIM_SOCKETS)) - set(changes.shim_sockets_before):
            with contextlib.suppress(OSError):
                (SHIM_SOCKETS / name).unlink()
    for mountpoint in sorted(_mounts_under(changes.workdir), reverse=True):
        if not _umount(mountpoint):
            problems.append(f"could not unmount {mountpoint}")
    for target in reversed(changes.bind_mounts):
        if target in _mountpoints() and not _umount(target):
            problems.append(f"could not unmount {target}")
    for directory in reversed(changes.created_dirs):
        problem = _remove_created_dir(directory)
        if problem:
            problems.append(problem)
    if changes.bridge and Path("/sys/class/net", changes.bridge).exists():
        for port in _listing(Path("/sys/class/net", changes.bridge, "brif")):
            subprocess.run(["ip", "link", "delete", port], capture_output=True)
        result = subprocess.run(["ip", "link", "delete", changes.bridge],
                                capture_output=True, text=True)
        if result.returncode != 0:
            problems.append(f"could not delete bridge {changes.bridge}: {result.stderr.strip()}")
    for cgroup in changes.cgroups:
        problems.extend(_remove_cgroup_tree(Path(cgroup)))
    for key, value in changes.sysctls.items():
        try:
            if read_sysctl(key) != value:
                write_sysctl(key, value)
        except OSError as exc:
            problems.append(f"could not restore {key}={value}: {exc.strerror}")
    return problems


def _remove_created_dir(directory: str) -> str:
    """rmdir a directory the node created; containerd bind-mounts /run/netns on itself to
    make it shared, so unmount it first."""
    for _ in range(20):
        while directory in _mountpoints() and _umount(directory):
            pass
        try:
            Path(directory).rmdir()
            return ""
        except FileNotFoundError:
            return ""
        except OSError as exc:
            error = exc
            time.sleep(0.05)
    return f"could not remove {directory}: {error.strerror}"


def _listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def _hierarchies() -> list[Path]:
    points = _mountpoints()
    return sorted(
        h for h in CGROUP_ROOT.iterdir() if h.is_dir() and str(h) in points
    ) if CGROUP_ROOT.is_dir() else []


def _unescape(field_: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field_ = field_.replace(code, char)
    return field_


def _mountpoints() -> list[str]:
    with open("/proc/mounts") as mounts:
        return [_unescape(line.split()[1]) for line in mounts if line.strip()]


def _mounts_under(directory: str) -> list[str]:
    prefix = directory.rstrip("/") + "/"
    return sorted({m for m in _mountpoints() if m.startswith(prefix)})


def _umount(path: str) -> bool:
    if subprocess.run(["umount", path], capture_output=True).returncode == 0:
        return True
    return subprocess.run(["umount", "-l", path], capture_output=True).returncode == 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def _is_ours(pid: int, workdir: str) -> bool:
    """Still the node's process, not a later one that reused the pid."""
    return workdir in _cmdline(pid)


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = ""
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("", "Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _shims(socket: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmdline = _cmdline(int(entry.name))
            if "containerd-shim" in cmdline and socket in cmdline:
                found.append(int(entry.name))
    return found


def _cgroup_members(root: Path) -> set[int]:
    members: set[int] = set()
    if root.is_dir():
        for procs in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                members.update(int(p) for p in procs.read_text().split())
    return members


def _kill_cgroup_members(cgroups: list[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = set().union(*(_cgroup_members(Path(c)) for c in cgroups)) if cgroups else set()
        if not members:
            return
        for pid in members:
            _kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _remove_cgroup_tree(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    directories = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                         reverse=True)
    for directory in [*directories, root]:
        for _ in range(50):
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
    return [f"could not remove cgroup {root}"] if root.exists() else []
