"""The sandbox's `/sys` arguments are built once and rebuilt whenever what they show changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cyclone.node.runtimes import sandbox
from cyclone.node.runtimes.sandbox import SysView


def test_a_changed_cgroup_of_the_agent_rebuilds_them(monkeypatch) -> None:
    view = SysView()
    view.args([])
    builds = []
    monkeypatch.setattr(view, "_build", lambda cgroup: builds.append(cgroup) or ([], []))
    view._key = ("0::/elsewhere\n", *view._key[1:])
    view.args([])
    assert len(builds) == 1


needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="a mount namespace of the test's own needs root")


def in_own_mount_namespace(script: str) -> dict:
    """Run `script` in a private mount namespace (so that the mounts other tests make on
    the host meanwhile never reach it) and return the JSON it prints."""
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
         textwrap.dedent(script)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@needs_root
def test_the_arguments_are_built_once_while_nothing_changes() -> None:
    result = in_own_mount_namespace("""
        import json
        from cyclone.node.runtimes.sandbox import SysView
        view = SysView()
        builds = []
        build = view._build
        view._build = lambda cgroup: builds.append(1) or build(cgroup)
        first_read_only = []
        first = view.args(first_read_only)
        same = all(view.args(read_only := []) == first and read_only == first_read_only
                   for _ in range(20))
        print(json.dumps({"builds": len(builds), "same": same, "args": first}))
    """)
    assert result["builds"] == 1 and result["same"]
    assert "/sys/fs" in result["args"]


@needs_root
def test_a_mount_made_after_the_first_build_is_seen_in_the_next_arguments() -> None:
    """A tmpfs mounted over the cgroup hierarchies after the first build changes neither
    the agent's cgroups nor the entries of /sys and /sys/fs: only the mount table tells
    that the hierarchies are gone."""
    result = in_own_mount_namespace("""
        import json, subprocess
        from cyclone.node.runtimes.sandbox import CGROUP_ROOT, SysView
        kept = SysView()
        before = kept.args([])
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", CGROUP_ROOT], check=True)
        read_only = []
        after = kept.args(read_only)
        fresh_read_only = []
        fresh = SysView().args(fresh_read_only)
        print(json.dumps({"before": before, "after": after, "fresh": fresh,
                          "read_only": read_only, "fresh_read_only": fresh_read_only}))
    """)
    assert result["before"] != result["after"]
    assert result["after"] == result["fresh"]
    assert result["read_only"] == result["fresh_read_only"] == [sandbox.CGROUP_ROOT]
    assert not [arg for arg in result["after"] if arg.startswith(sandbox.CGROUP_ROOT + "/")]
