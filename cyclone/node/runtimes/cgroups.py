"""The cgroup hierarchies a sandboxed container sees under `/sys/fs/cgroup`.

A container runs in its own cgroup namespace, so `/proc/self/cgroup` names its cgroups
relative to the namespace's root (`/`). The host's hierarchies, bound as they are, would be
listed in its `/proc/self/mountinfo` with roots relative to that same root (`/../..` for a
hierarchy where the agent is not at the top): the two no longer match, and a program that
maps one onto the other (the JVM's container support, which then fails with a
NullPointerException on cgroup v1) finds no directory for its own cgroup.

The container therefore sees, at each hierarchy's mount point, the directory of its own
cgroup (the agent's, which it inherits) bound read-only: a mount whose root is the
namespace's root, as a cgroup mount made inside the namespace would be. When one hierarchy
cannot be resolved (the agent's cgroup lies outside what its own mount shows), it sees no
hierarchy at all: a host without cgroups, which such programs handle.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

CGROUP_ROOT = "/sys/fs/cgroup"
UNIFIED = ""
"""The key of the cgroup v2 hierarchy (hierarchy id 0 in `/proc/self/cgroup`)."""


@dataclass(frozen=True)
class CgroupMount:
    mount_point: str
    root: str
    """The directory of the hierarchy this mount shows, as the reader's namespace names it."""
    hierarchy: frozenset[str]
    """Its controllers (`name=systemd` for a named one); empty for cgroup v2."""


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def cgroup_mounts(mountinfo: str) -> list[CgroupMount]:
    """The cgroup (v1 and v2) mounts of a `/proc/<pid>/mountinfo` text."""
    mounts = []
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        head, tail = fields.split(), rest.split()
        if len(head) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        options = frozenset(tail[2].split(","))
        hierarchy = frozenset() if tail[0] == "cgroup2" else options
        mounts.append(CgroupMount(_unescape(head[4]), _unescape(head[3]), hierarchy))
    return mounts


def own_cgroups(proc_cgroup: str) -> dict[frozenset[str], str]:
    """A `/proc/<pid>/cgroup` text as {controllers: path} (`frozenset()` for cgroup v2)."""
    paths: dict[frozenset[str], str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            hierarchy = frozenset(c for c in parts[1].split(",") if c)
            paths[frozenset() if parts[0] == "0" else hierarchy] = parts[2]
    return paths


def _own_path(mount: CgroupMount, own: dict[frozenset[str], str]) -> str | None:
    """Which cgroup of `own` the mount's hierarchy holds: v1 controllers are matched by
    being among the mount's options."""
    for hierarchy, path in own.items():
        if (hierarchy and hierarchy <= mount.hierarchy) or (not hierarchy
                                                              and not mount.hierarchy):
            return path
    return None


def cgroup_view(mountinfo: str, proc_cgroup: str) -> dict[str, str] | None:
    """{mount point: host directory to bind there} for each hierarchy mounted at or directly
    below `CGROUP_ROOT`, the directory being the process's own cgroup in it; None when one
    of them cannot be resolved (the container is then shown none)."""
    own = own_cgroups(proc_cgroup)
    view: dict[str, str] = {}
    for mount in cgroup_mounts(mountinfo):
        if mount.mount_point != CGROUP_ROOT and posixpath.dirname(
                mount.mount_point) != CGROUP_ROOT:
            continue
        path = _own_path(mount, own)
        root = mount.root.rstrip("/")
        if path is None or not (path == mount.root or path.startswith(root + "/")):
            return None
        view[mount.mount_point] = mount.mount_point + path[len(root):].rstrip("/")
    return view
