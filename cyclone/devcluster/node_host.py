"""What a real node changes on the host, written down before each change and undone after.

A kubelet and its runtime touch the machine outside their own directory: sysctls, bind
mounts over paths the kubelet hard-codes, directories, network namespaces, the CNI bridge,
the `kubepods` cgroups, and container processes whose shims outlive containerd; the kubelet
(KUBE-FIREWALL) and kube-proxy add their KUBE-* chains to iptables. Each change
is appended to a journal file in `STATE_DIR` *before* it is made; `restore` undoes whatever
the journal lists, so a node that failed half-way, or whose test process was killed, is
cleaned up by `stop()` or by the next start.

`restore` runs as root, so it acts only on entries a node writes (`trusted`): the sysctls the
kubelet rewrites, bind mounts over the paths it hard-codes, directories on the way to those,
the node's bridge and its veths, the `kubepods` cgroups, mounts under the node's own
containerd and kubelet dirs, pids whose executable and arguments are the node's, and the
KUBE-* iptables chains that were not there before the node started (and the rules that jump
to them).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cyclone.devcluster.node_iptables import remove_kube_chains
from cyclone.devcluster.node_lock import STATE_DIR, NodeError, open_private_file

JOURNAL_NAME = "host-changes.json"
JOURNAL = STATE_DIR / JOURNAL_NAME
CGROUP_ROOT = Path("/sys/fs/cgroup")
NETNS_DIR = Path("/run/netns")
SHIM_SOCKETS = Path("/run/containerd/s")
"""Where containerd's shims put their sockets, whatever containerd's state dir; a killed shim
leaves its socket behind."""

SYSCTLS = (
    "vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
)
"""What the kubelet rewrites on start (the bridge plugin: ip_forward; kube-proxy:
route_localnet)."""
BRIDGE = "cni-cyclone0"
HARD_CODED_DIRS = ("/var/log/pods", "/var/log/containers", "/var/lib/kubelet/device-plugins",
                   "/var/lib/cni/results")
"""Host paths the kubelet and CNI use whatever they are told: node-private dirs are
bind-mounted over them while the node runs."""
RUNTIME_DIRS = ("/run/containerd/s", "/run/containerd/runc", "/run/netns")
COMPONENTS = ("kubelet", "containerd", "kube-proxy", "dnsmasq")
MOUNTING_SUBDIRS = ("containerd", "kubelet", "overlay-probe")
"""The parts of a node's workdir where it mounts (container root filesystems, sandbox shm,
pod volumes, the snapshotter probe)."""


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
    kube_chains_before: list[str] | None = None
    """The KUBE-* chains (`command table chain`) iptables held before the kubelet and
    kube-proxy started; None until then."""
    state_dir: Path = field(default=STATE_DIR, repr=False, compare=False)
    """Where the journal is kept (not part of it)."""

    def save(self) -> None:
        record = asdict(self)
        del record["state_dir"]
        temporary = self.state_dir / f"{JOURNAL_NAME}.tmp"
        fd = open_private_file(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(record, indent=1))
        try:
            os.replace(temporary, self.state_dir / JOURNAL_NAME)
        except OSError as exc:
            raise NodeError(f"cannot write {self.state_dir / JOURNAL_NAME}: {exc.strerror}"
                            ) from None

    def discard(self) -> None:
        """Remove the journal once everything is undone (only if it is this node's)."""
        current = HostChanges.load(self.state_dir)
        if current is not None and current.workdir == self.workdir:
            (self.state_dir / JOURNAL_NAME).unlink(missing_ok=True)

    @classmethod
    def load(cls, state_dir: Path = STATE_DIR) -> HostChanges | None:
        """The journal in `state_dir` (checked, see `node_lock.open_state_dir`), if any."""
        journal = state_dir / JOURNAL_NAME
        try:
            fd = open_private_file(journal, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd) as source:
            text = source.read()
        try:
            record = json.loads(text)
            record.pop("state_dir", None)
            return cls(**record, state_dir=state_dir)
        except (ValueError, TypeError, AttributeError):
            journal.unlink(missing_ok=True)
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

    def record_kube_chains(self, chains: list[str]) -> None:
        """The KUBE-* chains that exist before the kubelet and kube-proxy add their own."""
        self.kube_chains_before = chains
        self.save()

    def record_pid(self, component: str, pid: int) -> None:
        self.pids[component] = pid
        self.save()


def read_sysctl(key: str) -> str:
    return (Path("/proc/sys") / key.replace(".", "/")).read_text().strip()


def write_sysctl(key: str, value: str) -> None:
    (Path("/proc/sys") / key.replace(".", "/")).write_text(value + "\n")


def _known_dirs() -> set[str]:
    """The directories a node creates: the paths it bind-mounts over or whose runtime dirs it
    needs, and the parents of those below the top level."""
    known = set()
    for path in (*HARD_CODED_DIRS, *RUNTIME_DIRS):
        known.update(str(p) for p in (Path(path), *Path(path).parents) if len(p.parts) > 2)
    return known


def valid_workdir(path: Any) -> bool:
    """An absolute, normalized path that holds none of the host paths a node touches."""
    if not isinstance(path, str) or not path.startswith("/") or os.path.normpath(path) != path:
        return False
    if len(Path(path).parts) < 3 or path.startswith("//"):
        return False
    return not any(k == path or k.startswith(path + "/")
                   for k in (*HARD_CODED_DIRS, *RUNTIME_DIRS, str(CGROUP_ROOT)))


def _names(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def trusted(changes: HostChanges) -> tuple[HostChanges, list[str]]:
    """`changes` without the entries a node never writes, and those entries, named.

    The journal is root's own file in a private directory; this is the second line: whatever
    it holds, `restore` writes only the kubelet's sysctls (as numbers), unmounts only the
    node's paths and deletes only its bridge, so a planted or corrupt entry cannot make root
    act elsewhere on the host.
    """
    foreign: list[str] = []
    workdir = changes.workdir if valid_workdir(changes.workdir) else ""
    if not workdir:
        foreign.append(f"workdir {changes.workdir!r}")
    socket = f"{workdir}/containerd/containerd.sock" if workdir else ""
    if changes.socket and changes.socket != socket:
        foreign.append(f"socket {changes.socket!r}")
    lists = {"created_dirs": changes.created_dirs, "bind_mounts": changes.bind_mounts,
             "cgroups": changes.cgroups}
    foreign += [f"{k} {v!r}" for k, v in lists.items() if _names(v) is None]
    foreign += [f"{k} {v!r}" for k, v in (("sysctls", changes.sysctls), ("pids", changes.pids))
                if not isinstance(v, dict)]
    sysctls = changes.sysctls if isinstance(changes.sysctls, dict) else {}
    kept_sysctls = {k: v for k, v in sysctls.items()
                    if k in SYSCTLS and isinstance(v, str) and re.fullmatch(r"-?\d+", v)}
    foreign += [f"sysctl {k}={v!r}" for k, v in sysctls.items() if k not in kept_sysctls]
    known = _known_dirs()
    dirs = _names(changes.created_dirs) or []
    foreign += [f"directory {d}" for d in dirs if d not in known]
    mounts = _names(changes.bind_mounts) or []
    foreign += [f"mount {m}" for m in mounts if m not in HARD_CODED_DIRS]
    bridge = changes.bridge if changes.bridge == BRIDGE else ""
    if changes.bridge and not bridge:
        foreign.append(f"link {changes.bridge!r}")
    cgroups = _names(changes.cgroups) or []
    kept_cgroups = [c for c in cgroups if os.path.normpath(c) == c
                    and Path(c).name == "kubepods" and Path(c).parent.parent == CGROUP_ROOT]
    foreign += [f"cgroup {c}" for c in cgroups if c not in kept_cgroups]
    pids = changes.pids if isinstance(changes.pids, dict) else {}
    kept_pids = {c: p for c, p in pids.items() if c in COMPONENTS and workdir
                 and type(p) is int and p > 1}
    foreign += [f"pid {c}={p!r}" for c, p in pids.items() if c not in kept_pids]
    before = {"netns_before": changes.netns_before,
              "shim_sockets_before": changes.shim_sockets_before}
    foreign += [f"{k} {v!r}" for k, v in before.items() if v is not None and _names(v) is None]
    if changes.kube_chains_before is not None and _names(changes.kube_chains_before) is None:
        foreign.append(f"kube_chains_before {changes.kube_chains_before!r}")
    kept = HostChanges(
        workdir=workdir, socket=socket if changes.socket == socket else "",
        sysctls=kept_sysctls, created_dirs=[d for d in dirs if d in known],
        bind_mounts=[m for m in mounts if m in HARD_CODED_DIRS],
        netns_before=_names(changes.netns_before),
        shim_sockets_before=_names(changes.shim_sockets_before),
        bridge=bridge, cgroups=kept_cgroups, pids=kept_pids,
        kube_chains_before=_names(changes.kube_chains_before), state_dir=changes.state_dir)
    return kept, foreign


def restore(changes: HostChanges) -> list[str]:
    """Undo everything `changes` lists; return what could not be undone (empty: all of it),
    and the entries ignored because no node writes them (`trusted`).

    Order matters: processes first (the node's own by recorded pid, then every process in
    its cgroups, then the container shims bound to its socket), so that nothing holds the
    namespaces and mounts removed next; the sysctls before the KUBE-* chains, so that
    route_localnet is off again before KUBE-FIREWALL goes.
    """
    changes, foreign = trusted(changes)
    problems: list[str] = []
    if foreign:
        problems.append("ignored journal entries a node never writes: " + ", ".join(foreign))
    for component, pid in changes.pids.items():
        if _is_ours(component, pid, changes.workdir):
            _kill(pid, signal.SIGKILL)
            if not _gone(pid, 10.0):
                problems.append(f"{component} (pid {pid}) did not exit")
    _kill_cgroup_members(changes.cgroups)
    for key, value in changes.sysctls.items():
        try:
            if read_sysctl(key) != value:
                write_sysctl(key, value)
        except OSError as exc:
            problems.append(f"could not restore {key}={value}: {exc.strerror}")
    if changes.kube_chains_before is not None:
        problems.extend(remove_kube_chains(set(changes.kube_chains_before)))
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
    node_mounts = [m for sub in MOUNTING_SUBDIRS if changes.workdir
                   for m in _mounts_under(f"{changes.workdir}/{sub}", itself=True)]
    for mountpoint in sorted(node_mounts, reverse=True):
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
            if port.startswith("veth"):
                subprocess.run(["ip", "link", "delete", port], capture_output=True)
        result = subprocess.run(["ip", "link", "delete", changes.bridge],
                                capture_output=True, text=True)
        if result.returncode != 0:
            problems.append(f"could not delete bridge {changes.bridge}: {result.stderr.strip()}")
    for cgroup in changes.cgroups:
        problems.extend(_remove_cgroup_tree(Path(cgroup)))
    return problems


def _remove_created_dir(directory: str) -> str:
    """rmdir a directory the node created; containerd bind-mounts /run/netns on itself to
    make it shared, so unmount it first."""
    for _ in range(20):
        while directory in RUNTIME_DIRS and directory in _mountpoints() and _umount(directory):
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


def _mounts_under(directory: str, itself: bool = False) -> list[str]:
    """The mountpoints below `directory` (and `directory` too, with `itself`: the kubelet
    bind-mounts its root dir onto itself)."""
    prefix = directory.rstrip("/") + "/"
    return sorted({m for m in _mountpoints()
                   if m.startswith(prefix) or (itself and m == directory)})


def _umount(path: str) -> bool:
    if subprocess.run(["umount", path], capture_output=True).returncode == 0:
        return True
    return subprocess.run(["umount", "-l", path], capture_output=True).returncode == 0


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def _executable(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")).removesuffix(" (deleted)")
    except OSError:
        return ""


def _is_ours(component: str, pid: int, workdir: str) -> bool:
    """Still the node's kubelet, containerd, kube-proxy or dnsmasq (by executable and the
    arguments the node gave it), not a later process that reused the pid."""
    marks = {"kubelet": f"--root-dir={workdir}/kubelet",
             "containerd": f"--config={workdir}/containerd.toml",
             "kube-proxy": f"--kubeconfig={workdir}/kubeconfig",
             "dnsmasq": f"--pid-file={workdir}/dnsmasq.pid"}
    return (component in marks and bool(workdir) and _executable(pid) == component
            and marks[component] in _argv(pid))


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
            argv = _argv(int(entry.name))
            if argv and os.path.basename(argv[0]).startswith("containerd-shim") and (
                    socket in argv):
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

