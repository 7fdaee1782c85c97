"""Which directory of each cgroup hierarchy a sandboxed container sees at its mount point."""

from __future__ import annotations

from cyclone.node.runtimes.cgroups import cgroup_view

HYBRID_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:32 / /mnt/other\\040memory rw,relatime - cgroup cgroup rw,memory
"""
HYBRID_SELF = """\
9:name=systemd:/
4:memory:/agents/a1
2:cpu,cpuacct:/
0::/
"""


def test_each_hierarchy_shows_the_processs_own_cgroup_at_its_mount_point() -> None:
    assert cgroup_view(HYBRID_MOUNTS, HYBRID_SELF) == {
        "/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/agents/a1",
        "/sys/fs/cgroup/systemd": "/sys/fs/cgroup/systemd",
        "/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified",
    }


def test_a_mount_of_a_subtree_is_resolved_relative_to_its_root() -> None:
    mounts = "35 31 0:32 /agents /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert cgroup_view(mounts, "4:memory:/agents/a1/x\n") == {
        "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/a1/x"}
    assert cgroup_view(mounts, "4:memory:/agents\n") == {
        "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory"}


def test_cgroup_v2_alone_is_bound_at_the_root_itself() -> None:
    mounts = "30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    assert cgroup_view(mounts, "0::/system.slice/cyclone.service\n") == {
        "/sys/fs/cgroup": "/sys/fs/cgroup/system.slice/cyclone.service"}


def test_a_hierarchy_outside_what_its_mount_shows_leaves_the_container_none() -> None:
    inside_a_namespace = HYBRID_MOUNTS.replace("0:32 / /sys/fs/cgroup/memory",
                                               "0:32 /../.. /sys/fs/cgroup/memory")
    assert cgroup_view(inside_a_namespace, HYBRID_SELF.replace("/agents/a1", "/")) is None
    assert cgroup_view(HYBRID_MOUNTS, "2:cpu,cpuacct:/\n") is None
    assert cgroup_view("", HYBRID_SELF) == {}
