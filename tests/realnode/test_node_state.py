"""The real node's lock and journal are root's alone, and a journal cannot make root act on
anything but what a node changes.

Root reads the journal back after a killed run and kills, unmounts, deletes and writes what it
lists, so these tests take the attacker's side: a state directory somebody else created or
pointed elsewhere is refused, and a journal with a foreign sysctl, pid, mount or link leaves
those untouched. No node is started; planted journals hold only foreign entries, so the
restores here touch nothing a running node owns.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cyclone.devcluster.node import (
    BRIDGE,
    HARD_CODED_DIRS,
    RUNTIME_DIRS,
    STATE_DIR,
    NodeError,
    NodeLock,
    clean_up_left_over_node,
)
from cyclone.devcluster.node_host import (
    CGROUP_ROOT,
    JOURNAL_NAME,
    SYSCTLS,
    HostChanges,
    trusted,
)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mount, ip link)")

WORKDIR = "/tmp/cyclone-node-abc123"


def plant(state: Path, **entries: object) -> Path:
    """A journal written by someone else into `state`."""
    state.mkdir(mode=0o700, exist_ok=True)
    journal = state / JOURNAL_NAME
    journal.write_text(json.dumps(entries))
    return journal


def refusal(call: object) -> str:
    with pytest.raises(NodeError) as caught:
        call()  # type: ignore[operator]
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_lock_and_journal_live_in_a_directory_under_run() -> None:
    assert STATE_DIR == Path("/run/cyclone-real-node")
    assert NodeLock().path.parent == STATE_DIR


def test_the_state_directory_is_created_private_and_holds_the_lock(tmp_path: Path) -> None:
    lock = NodeLock(tmp_path / "state" / "lock")
    lock.acquire(timeout=1)
    try:
        info = (tmp_path / "state").stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (os.geteuid(), 0o700)
        assert stat.S_IMODE((tmp_path / "state" / "lock").stat().st_mode) == 0o600
    finally:
        lock.release()


@as_root
def test_a_state_directory_another_user_created_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    message = refusal(lambda: NodeLock(state / "lock").acquire(timeout=1))
    assert "owned by uid 65534" in message
    assert os.listdir(state) == []


def test_a_state_directory_others_can_write_to_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    assert "mode 0777" in refusal(lambda: NodeLock(state / "lock").acquire(timeout=1))
    assert os.listdir(state) == []


def test_a_state_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "state").symlink_to(elsewhere)
    message = refusal(lambda: NodeLock(tmp_path / "state" / "lock").acquire(timeout=1))
    assert "symlink" in message
    assert os.listdir(elsewhere) == []


def test_a_state_directory_reached_through_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "state").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    state = tmp_path / "link" / "state"
    assert "symlink" in refusal(lambda: HostChanges(workdir=WORKDIR, state_dir=state).save())
    assert os.listdir(tmp_path / "real" / "state") == []


def test_a_lock_file_planted_as_a_symlink_is_not_followed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (state / "lock").symlink_to(victim)
    refusal(lambda: NodeLock(state / "lock").acquire(timeout=1))
    assert victim.read_text() == "precious"


def test_a_journal_planted_as_a_symlink_is_neither_read_nor_written_through(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim.json"
    victim.write_text(json.dumps({"workdir": WORKDIR, "sysctls": {"kernel.panic": "1"}}))
    (state / JOURNAL_NAME).symlink_to(victim)
    (state / f"{JOURNAL_NAME}.tmp").symlink_to(victim)
    refusal(lambda: HostChanges.load(state))
    refusal(lambda: HostChanges(workdir=WORKDIR, state_dir=state).save())
    assert json.loads(victim.read_text())["sysctls"] == {"kernel.panic": "1"}


def a_node_journal() -> HostChanges:
    """Everything a node writes."""
    return HostChanges(
        workdir=WORKDIR, socket=f"{WORKDIR}/containerd/containerd.sock",
        sysctls={key: "1" for key in SYSCTLS},
        created_dirs=["/var/lib/kubelet", *HARD_CODED_DIRS, *RUNTIME_DIRS],
        bind_mounts=list(HARD_CODED_DIRS), netns_before=["cni-1"], shim_sockets_before=[],
        bridge=BRIDGE, cgroups=[str(CGROUP_ROOT / "memory" / "kubepods")],
        pids={"kubelet": 4321, "containerd": 4322})


def test_a_journal_a_node_wrote_is_trusted_whole() -> None:
    journal = a_node_journal()
    assert trusted(journal) == (journal, [])


FOREIGN = {
    "sysctl": ({"sysctls": {"kernel.core_pattern": "|/tmp/x"}}, "sysctls", "sysctl"),
    "numeric sysctl": ({"sysctls": {"kernel.sysrq": "1"}}, "sysctls", "sysctl"),
    "sysctl value": ({"sysctls": {"kernel.panic": "1\n|/tmp/x"}}, "sysctls", "sysctl"),
    "pid": ({"pids": {"sshd": 1234}}, "pids", "pid"),
    "pid 1": ({"pids": {"kubelet": 1}}, "pids", "pid"),
    "mount": ({"bind_mounts": ["/home"]}, "bind_mounts", "mount"),
    "directory": ({"created_dirs": ["/etc"]}, "created_dirs", "directory"),
    "top-level directory": ({"created_dirs": ["/run"]}, "created_dirs", "directory"),
    "link": ({"bridge": "eth0"}, "bridge", "link"),
    "cgroup root": ({"cgroups": [str(CGROUP_ROOT)]}, "cgroups", "cgroup"),
    "cgroup": ({"cgroups": [str(CGROUP_ROOT / "memory" / "user.slice")]}, "cgroups", "cgroup"),
    "socket": ({"socket": "/"}, "socket", "socket"),
    "netns listing": ({"netns_before": "cni-1"}, "netns_before", "netns_before"),
}


@pytest.mark.parametrize("entry", FOREIGN.values(), ids=FOREIGN.keys())
def test_a_journal_entry_no_node_writes_is_dropped_and_named(
        entry: tuple[dict[str, object], str, str]) -> None:
    planted, field_name, word = entry
    journal = a_node_journal()
    setattr(journal, field_name, planted[field_name])
    kept, foreign = trusted(journal)
    assert [f for f in foreign if f.startswith(word + " ")], foreign
    assert getattr(kept, field_name) in ("", [], {}, None)


@pytest.mark.parametrize("workdir", ["", "/", "/var", "/var/lib", "/run/containerd", "tmp/x",
                                     "/tmp/../var/lib", "//var/lib"])
def test_a_workdir_that_would_reach_host_paths_is_refused_with_what_depends_on_it(
        workdir: str) -> None:
    journal = a_node_journal()
    journal.workdir = workdir
    kept, foreign = trusted(journal)
    assert f"workdir {workdir!r}" in foreign
    assert (kept.workdir, kept.socket, kept.pids) == ("", "", {})


@pytest.fixture
def imposter(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose arguments name the node's workdir the way its kubelet's do."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)",
         f"--root-dir={tmp_path / 'node'}/kubelet"])
    yield proc
    proc.kill()
    proc.wait()


@as_root
def test_a_planted_pid_that_is_not_the_nodes_kubelet_is_not_killed(
        tmp_path: Path, imposter: subprocess.Popen[bytes]) -> None:
    state = tmp_path / "state"
    plant(state, workdir=str(tmp_path / "node"), pids={"kubelet": imposter.pid})
    clean_up_left_over_node(state)
    assert imposter.poll() is None


@pytest.fixture
def link() -> Iterator[str]:
    name = f"cyct{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", "name", name, "type", "bridge"], check=True)
    yield name
    subprocess.run(["ip", "link", "delete", name], capture_output=True)


@as_root
def test_a_planted_link_is_not_deleted_and_the_journal_is_kept(tmp_path: Path,
                                                               link: str) -> None:
    state = tmp_path / "state"
    journal = plant(state, workdir=str(tmp_path / "node"), bridge=link)
    message = refusal(lambda: clean_up_left_over_node(state))
    assert f"link '{link}'" in message and str(journal) in message
    assert Path("/sys/class/net", link).exists()
    assert journal.exists()


def mountpoints() -> set[str]:
    with open("/proc/mounts") as mounts:
        return {line.split()[1] for line in mounts}


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[list[Path]]:
    """A tmpfs outside the node and one in its workdir outside the node's own parts."""
    points = [tmp_path / "victim", tmp_path / "node" / "elsewhere"]
    for point in points:
        point.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(point)], check=True)
    yield points
    for point in points:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@as_root
def test_planted_mounts_are_not_unmounted(tmp_path: Path, mounted: list[Path]) -> None:
    state = tmp_path / "state"
    plant(state, workdir=str(tmp_path / "node"), bind_mounts=[str(mounted[0])])
    assert f"mount {mounted[0]}" in refusal(lambda: clean_up_left_over_node(state))
    assert {str(p) for p in mounted} <= mountpoints()


@pytest.fixture
def node_mounts(tmp_path: Path) -> Iterator[list[Path]]:
    """What a node mounts in its workdir: the kubelet's root dir onto itself, pod volumes,
    container root filesystems."""
    node = tmp_path / "node"
    points = [node / "kubelet", node / "kubelet" / "pods" / "p" / "volumes" / "v",
              node / "containerd" / "state" / "task" / "rootfs"]
    for point in points:
        point.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(point)], check=True)
    yield points
    for point in reversed(points):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@as_root
def test_the_mounts_in_the_nodes_own_dirs_are_undone(tmp_path: Path,
                                                     node_mounts: list[Path]) -> None:
    state = tmp_path / "state"
    journal = plant(state, workdir=str(tmp_path / "node"))
    clean_up_left_over_node(state)
    assert not {str(p) for p in node_mounts} & mountpoints()
    assert not journal.exists()
