"""The bubblewrap sandbox of a host-runtime container: what it sees, and who it runs as.

A container gets a new root (a tmpfs, read-only once set up) holding:

- every top-level entry of the host's root bound read-only, except `/proc`, `/dev` and
  `/tmp`, which are its own (`--proc`, `--dev`, a tmpfs), and the host's secrets and
  state: `HIDDEN_DIRS` become empty read-only directories, `HIDDEN_FILES` (and the files
  matching `HIDDEN_FILE_PATTERNS`) read as `/dev/null`; so do the paths a node adds (the
  data directories of `cyclone up` and the node, the CLI's config file);
- under `/sys/fs/cgroup`, its own cgroup of each hierarchy only (`cgroups`), so that what
  its cgroup namespace names and what its mounts show agree;
- its pod's volumes, bound at their mount paths (read-only when the mount asks), and its
  working directory.

A mount path whose parent is part of the read-only host tree (`/usr/src/app`, say) cannot be
created there, so that parent is *spliced*: replaced by a tmpfs holding read-only binds of
the host's entries, where the mount point is then made.

The command runs in new user, PID, IPC, UTS (and, where the kernel allows, cgroup)
namespaces with no capabilities, in a new session, as the container's uid/gid inside its
user namespace; on the host that is one unprivileged uid, whatever uid the container asked
for. The network namespace is the host's.

When the agent runs as root there are two bubblewraps: an outer one, as root, builds the
tree (so it reaches volume sources whatever the modes of the directories above them, and
binds them from file descriptors the agent opened without following symlinks); it runs
`setpriv` to the unprivileged host uid, then the inner one, which creates the user namespace
and the others. Otherwise one bubblewrap, as the agent's own user, does both.

The command's environment (`env_args`) is set by the bubblewrap that runs it; the processes
above keep the fixed environment the agent starts them with.
"""

from __future__ import annotations

import glob
import os
import posixpath
import select
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cyclone.node.runtimes.cgroups import CGROUP_ROOT, cgroup_view

NOBODY = 65534
DEFAULT_WORKDIR = "/workspace"
"""The working directory of a container without `workingDir`: a private empty directory,
unless one of its volumes is mounted there."""
DEFAULT_HOME = "/tmp"

HIDDEN_DIRS = (
    "/root", "/home", "/run", "/mnt", "/media", "/srv", "/boot", "/lost+found",
    "/var/lib", "/var/log", "/var/cache", "/var/backups", "/var/mail", "/var/spool",
    "/etc/ssl/private", "/etc/kubernetes", "/etc/cyclone",
)
"""Host directories a container sees empty: users' homes (and the CLI config in them), the
state of services (databases, container runtimes, kubelet), logs, runtime sockets."""
HIDDEN_FILES = (
    "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/security/opasswd",
    "/etc/sudoers",
)
HIDDEN_FILE_PATTERNS = ("/etc/ssh/*key*",)
PRIVATE_TMPFS = ("/tmp", "/var/tmp")
"""World-writable directories every container gets its own (empty) copy of."""
OWN_TOP_LEVEL = ("/proc", "/dev", "/tmp")


@dataclass(frozen=True)
class SandboxMount:
    """A host path (a volume, an image overlay, the private working directory) bound at
    `target`, a path already resolved against the host's symlinks."""

    source: Path
    target: str
    read_only: bool = False
    within: Path | None = None
    """The volume directory `source` must be reached from without following symlinks."""


@dataclass(frozen=True)
class SandboxPlan:
    uid: int
    gid: int
    hostname: str
    mounts: tuple[SandboxMount, ...]
    """In order: a later mount may lie below an earlier one."""
    chdir: str
    make_dirs: tuple[str, ...] = ()
    hidden: tuple[Path, ...] = ()
    """Host paths to hide besides the built-in ones (they need not exist)."""


@dataclass
class _HostTree:
    """The host's root as the container will see it, with queries answered from the host."""

    hidden_dirs: list[str] = field(default_factory=list)
    hidden_files: list[str] = field(default_factory=list)

    def covered(self, path: str) -> bool:
        """Whether `path` lies in a directory the container sees empty or its own."""
        return any(_within(path, d) for d in [*self.hidden_dirs, *PRIVATE_TMPFS, *OWN_TOP_LEVEL])


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _depth(path: str) -> int:
    return 0 if path == "/" else path.rstrip("/").count("/")


def _entry_args(path: str) -> list[str]:
    """Arguments that reproduce one host entry read-only at the same path."""
    if os.path.islink(path):
        return ["--symlink", os.readlink(path), path]
    if os.path.isdir(path) or os.path.isfile(path):
        return ["--ro-bind", path, path]
    return []


def _hidden(extra: Iterable[Path]) -> _HostTree:
    """The existing host paths to hide, resolved, outermost first, none inside another."""
    candidates = [*HIDDEN_DIRS, *HIDDEN_FILES, *(str(p) for p in extra)]
    for pattern in HIDDEN_FILE_PATTERNS:
        candidates += glob.glob(pattern)
    tree = _HostTree()
    for path in sorted({os.path.realpath(c) for c in candidates}, key=lambda p: (_depth(p), p)):
        if path == "/" or tree.covered(path) or not os.path.exists(path):
            continue
        if os.path.isdir(path):
            tree.hidden_dirs.append(path)
        elif not any(_within(path, d) for d in tree.hidden_dirs):
            tree.hidden_files.append(path)
    return tree


def _splice_points(targets: Iterable[str], tree: _HostTree) -> list[str]:
    """Host directories that must become tmpfs copies (read-only binds of their entries):
    the deepest existing ancestor of each missing target, so that the mount point can be
    made in it, and every ancestor that others may not search (the sandbox user could not
    reach the mount), unless the root or a directory the container sees empty anyway."""
    points: set[str] = set()
    for target in targets:
        parent = posixpath.dirname(target)
        while parent != "/" and not os.path.isdir(parent):
            parent = posixpath.dirname(parent)
        if not os.path.lexists(target) and parent != "/" and not tree.covered(parent):
            points.add(parent)
        while parent != "/" and not tree.covered(parent):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                points.add(parent)
            parent = posixpath.dirname(parent)
    return sorted(points, key=_depth)


def view_args(
    plan: SandboxPlan,
    source_args: Callable[[SandboxMount], list[str]] | None = None,
    *,
    nested: bool = True,
) -> list[str]:
    """The bubblewrap options that build what the container sees (its mount namespace).

    `nested`: these run as root in an outer bubblewrap (the host's /proc is bound so that the
    inner, unprivileged one may mount its own); otherwise they are part of the one
    unprivileged bubblewrap, with its own /proc. `source_args` renders one mount (by default
    `--bind SRC DEST` / `--ro-bind SRC DEST`).
    """
    render = source_args or _path_args
    tree = _hidden(plan.hidden)
    args: list[str] = []
    read_only = ["/"]
    top_hidden = {d for d in tree.hidden_dirs if _depth(d) == 1}
    for name in sorted(os.listdir("/")):
        path = "/" + name
        if path in OWN_TOP_LEVEL:
            continue
        if path == "/sys" and os.path.isdir(CGROUP_ROOT):
            args += _SYS_VIEW.args(read_only)
            continue
        args += ["--dir", path] if path in top_hidden else _entry_args(path)
    targets = [m.target for m in plan.mounts] + list(plan.make_dirs)
    for point in _splice_points(targets, tree):
        args += ["--tmpfs", point]
        for name in sorted(os.listdir(point)):
            args += _entry_args(posixpath.join(point, name))
        read_only.append(point)
    args += ["--bind", "/proc", "/proc"] if nested else ["--proc", "/proc"]
    args += ["--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm"]
    for path in PRIVATE_TMPFS:
        if path == "/tmp" or os.path.isdir(path):
            args += ["--perms", "1777", "--tmpfs", path]
    for path in tree.hidden_dirs:
        if path not in top_hidden:
            args += ["--tmpfs", path]
            read_only.append(path)
    for path in tree.hidden_files:
        args += ["--ro-bind", "/dev/null", path]
    for mount in plan.mounts:
        args += _parent_dirs(mount.target, tree) + render(mount)
    for path in plan.make_dirs:
        args += ["--dir", path]
    for path in sorted(read_only, key=_depth, reverse=True):
        args += ["--remount-ro", path]
    return [*args, "--die-with-parent"]


def isolation_args(plan: SandboxPlan, *, nested: bool = True) -> list[str]:
    """The bubblewrap options that isolate the command: namespaces, ids, no capabilities.

    `nested`: the options of the inner bubblewrap, which takes the outer one's tree whole
    (devices included, since the outer made /dev) and mounts the /proc of its PID namespace.
    """
    args = ["--unshare-user", "--disable-userns", "--uid", str(plan.uid), "--gid",
            str(plan.gid), "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", plan.hostname]
    if nested:
        args += ["--dev-bind", "/", "/", "--proc", "/proc"]
    return [*args, "--chdir", plan.chdir, "--cap-drop", "ALL", "--new-session",
            "--die-with-parent"]


class SysView:
    """`/sys` read-only, its cgroup hierarchies being those of `cgroups.cgroup_view` (the
    host's are left out of every bind, so none stays listed in the container's mountinfo).

    The arguments are the same for every container (its cgroups are the agent's), so they
    are kept until the agent's mount table changes (the kernel marks an open
    `/proc/self/mountinfo` with POLLPRI then), its cgroups change, or the entries of `/sys`
    or `/sys/fs` do; each of those is looked at on every use.
    """

    def __init__(self) -> None:
        self._mountinfo: int | None = None
        self._poll = select.poll()
        self._key: tuple[str, tuple[str, ...], tuple[str, ...]] | None = None
        self._args: list[str] = []
        self._read_only: list[str] = []

    def args(self, read_only: list[str]) -> list[str]:
        """The arguments; adds the tmpfs directories they make to `read_only`."""
        try:
            key = (Path("/proc/self/cgroup").read_text(), tuple(sorted(os.listdir("/sys"))),
                   tuple(sorted(os.listdir(posixpath.dirname(CGROUP_ROOT)))))
        except OSError:
            key = None
        if key is None or key != self._key or self._mounts_changed():
            self._args, self._read_only = self._build(key[0] if key else None)
            self._key = key
        read_only += self._read_only
        return list(self._args)

    def _mounts_changed(self) -> bool:
        if self._mountinfo is None:
            return True
        return bool(self._poll.poll(0))

    def _read_mountinfo(self) -> str | None:
        """The mount table, read through the descriptor watched for changes, polled first
        so that the next poll reports any mount or unmount made after this read began."""
        try:
            if self._mountinfo is None:
                self._mountinfo = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
                self._poll.register(self._mountinfo, select.POLLPRI | select.POLLERR)
            self._poll.poll(0)
            os.lseek(self._mountinfo, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(self._mountinfo, 65536):
                chunks.append(chunk)
            return b"".join(chunks).decode()
        except OSError:
            return None

    def _build(self, proc_cgroup: str | None) -> tuple[list[str], list[str]]:
        mountinfo = self._read_mountinfo()
        view = cgroup_view(mountinfo, proc_cgroup) if mountinfo and proc_cgroup else None
        if view and not all(os.path.isdir(source) for source in view.values()):
            view = None
        args: list[str] = []
        for directory in ("/sys", posixpath.dirname(CGROUP_ROOT)):
            args += ["--dir", directory]
            for name in sorted(os.listdir(directory)):
                path = posixpath.join(directory, name)
                if path not in ("/sys/fs", CGROUP_ROOT):
                    args += _entry_args(path)
        if view and CGROUP_ROOT in view:
            return [*args, "--ro-bind", view[CGROUP_ROOT], CGROUP_ROOT], []
        args += ["--tmpfs", CGROUP_ROOT]
        for name in sorted(os.listdir(CGROUP_ROOT)) if view else ():
            path = posixpath.join(CGROUP_ROOT, name)
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif path in view:
                args += ["--ro-bind", view[path], path]
        return args, [CGROUP_ROOT]


_SYS_VIEW = SysView()


def _parent_dirs(target: str, tree: _HostTree) -> list[str]:
    """Make the missing parents of a mount point searchable (bubblewrap makes them 0700,
    owned by the outer root, which the sandbox user could not pass)."""
    args: list[str] = []
    parents: list[str] = []
    parent = posixpath.dirname(target)
    while parent != "/":
        parents.append(parent)
        parent = posixpath.dirname(parent)
    for path in reversed(parents):
        own = path in (*PRIVATE_TMPFS, *OWN_TOP_LEVEL)
        if (tree.covered(path) and not own) or not os.path.exists(path):
            args += ["--perms", "0755", "--dir", path]
    return args


def _path_args(mount: SandboxMount) -> list[str]:
    return ["--ro-bind" if mount.read_only else "--bind", str(mount.source), mount.target]


def env_args(env: Mapping[str, str]) -> list[str]:
    """The bubblewrap options that give the command exactly `env` as its environment.

    They reach the (innermost) bubblewrap through `--args FD`, never its command line nor the
    environment of the processes above it: those run as root (or as the agent), so a
    container's `LD_PRELOAD`, `PATH` or `BASH_ENV` there would run its code with their rights.
    Raises ValueError naming a variable no environment can hold.
    """
    args = ["--clearenv"]
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"environment variable name {name!r} is not valid")
        if "\0" in value:
            raise ValueError(f"environment variable {name!r} holds a NUL character")
        args += ["--setenv", name, value]
    return args


def args_file(args: list[str]) -> int:
    """A memory file holding `args` as bubblewrap's `--args FD` reads them, from its start.

    It is never on disk and never on a command line; only the processes it is passed to hold it.
    """
    fd = os.memfd_create("cyclone-args", os.MFD_CLOEXEC)
    try:
        view = memoryview(b"".join(os.fsencode(arg) + b"\0" for arg in args))
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def setpriv_args(host_uid: int, host_gid: int) -> list[str]:
    """Drop from root to the sandbox's host uid/gid (no groups, no new privileges)."""
    return ["setpriv", f"--reuid={host_uid}", f"--regid={host_gid}", "--clear-groups",
            "--no-new-privs", "--"]
