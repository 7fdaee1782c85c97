"""The host runtime's command line, image overlays and entrypoints."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node import HostRuntime
from cyclone.node.runtimes.base import StartError
from cyclone.node.runtimes.host import _until_ended, image_name, kill_tree, process_tree
from cyclone.node.volumes import Bind
from node.helpers import container_launch as launch
from node.helpers import (
    pod_manifest,
    running_agent,
    statuses,
    terminal,
    wait_for_pod,
)


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("busybox", "busybox"),
        ("busybox:1.36", "busybox"),
        ("registry:5000/team/resolver:v1", "registry:5000/team/resolver"),
        ("registry:5000/team/resolver", "registry:5000/team/resolver"),
        ("team/resolver@sha256:abc", "team/resolver"),
    ],
)
def test_image_name_drops_tag_and_digest(image: str, name: str) -> None:
    assert image_name(image) == name


def _contains(argv: list[str], part: list[str]) -> bool:
    return any(argv[i:i + len(part)] == part for i in range(len(argv)))


def test_argv_builds_the_view_as_root_then_drops_to_the_sandbox_user(tmp_path: Path) -> None:
    runtime = HostRuntime({"img": {"/entrypoint.sh": tmp_path / "entry.sh"}})
    argv = runtime.argv(launch(
        tmp_path, command=["sh"], args=["-c", "true"], working_dir="/workspace",
        binds=[Bind(tmp_path / "a", "/workspace"), Bind(tmp_path / "b", "/ro", True)],
        run_as_user=1000,
    ))
    outer, inner = argv[:argv.index("setpriv")], argv[argv.index("setpriv"):]
    assert outer[0] == "/usr/bin/bwrap" and "--unshare-user" not in outer
    assert not _contains(outer, ["--bind", "/", "/"])
    assert _contains(outer, ["--ro-bind", "/usr", "/usr"])
    assert _contains(outer, ["--remount-ro", "/"])
    assert _contains(outer, [
        "--bind", str(tmp_path / "a"), "/workspace",
        "--ro-bind", str(tmp_path / "b"), "/ro",
        "--ro-bind", str(tmp_path / "entry.sh"), "/entrypoint.sh",
    ])
    assert inner[:6] == ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                         "--no-new-privs", "--"]
    for option in (["--unshare-user"], ["--uid", "1000"], ["--gid", "65534"], ["--unshare-pid"],
                   ["--unshare-ipc"], ["--unshare-uts"], ["--cap-drop", "ALL"],
                   ["--new-session"], ["--chdir", "/workspace"]):
        assert _contains(inner, option), option
    assert inner[-4:] == ["--", "sh", "-c", "true"]


def test_the_data_dirs_and_host_secrets_are_hidden(tmp_path: Path) -> None:
    argv = HostRuntime(hidden_paths=["/usr/share/doc", "/etc/hostname", "/no/such"]).argv(
        launch(tmp_path, command=["true"], node_dir=Path("/usr/share/man")))
    assert _contains(argv, ["--tmpfs", "/usr/share/doc"])
    assert _contains(argv, ["--tmpfs", "/usr/share/man"])
    assert _contains(argv, ["--ro-bind", "/dev/null", "/etc/hostname"])
    assert "/no/such" not in argv
    assert _contains(argv, ["--ro-bind", "/dev/null", "/etc/shadow"])
    assert _contains(argv, ["--dir", "/root"]) and _contains(argv, ["--dir", "/home"])
    assert _contains(argv, ["--perms", "1777", "--tmpfs", "/tmp"])


def test_container_without_command_runs_args_or_the_known_entrypoint(tmp_path: Path) -> None:
    runtime = HostRuntime(image_entrypoints={"img": ["/entrypoint.sh"]})
    assert runtime.argv(launch(tmp_path, image="img:2", args=["pull"]))[-2:] == [
        "/entrypoint.sh", "pull"
    ]
    assert HostRuntime().argv(launch(tmp_path, args=["echo", "x"]))[-3:] == ["--", "echo", "x"]
    with pytest.raises(StartError):
        HostRuntime().argv(launch(tmp_path))


@pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")
async def test_image_overlay_provides_the_entrypoint_of_a_resolver_image(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    entry = tmp_path / "resolver-entrypoint.sh"
    entry.write_text('#!/bin/sh\nprintf "%s:%s" "$1" "$SCM_URL" > /dev/termination-log\n')
    entry.chmod(0o755)
    target = f"{tmp_path}/image/entrypoint.sh"
    runtime = HostRuntime(
        {"cyclone/resolver-git": {target: entry}},
        image_entrypoints={"cyclone/resolver-git": [target]},
    )
    container = {"name": "pull", "image": "cyclone/resolver-git:v1", "args": ["pull"],
                 "env": [{"name": "SCM_URL", "value": "https://example.com/r.git"}]}
    async with running_agent(cluster, tmp_path / "node", runtime):
        await cluster.create(pod_manifest("resolver", {"containers": [container]}))
        pod = await wait_for_pod(cluster, "resolver", terminal)
    terminated = statuses(pod)["pull"]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["message"]) == (
        0, "pull:https://example.com/r.git"
    )


def test_mount_targets_resolve_host_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    bind = Bind(tmp_path / "src", f"{tmp_path}/link/secrets/token")
    argv = HostRuntime().argv(launch(tmp_path, command=["true"], binds=[bind]))
    assert f"{tmp_path}/real/secrets/token" in argv


def test_working_dir_is_private_unless_a_volume_or_the_host_system_tree(tmp_path: Path) -> None:
    missing = f"{tmp_path}/nowhere/work"
    workdir = str(tmp_path / "state" / "workdir")
    argv = HostRuntime().argv(launch(tmp_path, command=["pwd"], working_dir=missing))
    assert _contains(argv, ["--bind", workdir, missing])
    assert _contains(argv, ["--chdir", missing])
    with_volume = HostRuntime().argv(launch(
        tmp_path, command=["pwd"], working_dir=missing, binds=[Bind(tmp_path, f"{missing}/data")]
    ))
    assert _contains(with_volume, ["--bind", workdir, missing])
    assert with_volume.index(workdir) < with_volume.index(f"{missing}/data")
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "file").touch()
    existing = str(tmp_path / "content")
    argv = HostRuntime().argv(launch(tmp_path, command=["pwd"], working_dir=existing))
    assert _contains(argv, ["--bind", workdir, existing])
    system = HostRuntime().argv(launch(tmp_path, command=["pwd"], working_dir="/usr/bin"))
    assert workdir not in system and _contains(system, ["--chdir", "/usr/bin"])
    default = HostRuntime().argv(launch(tmp_path, command=["pwd"]))
    assert _contains(default, ["--bind", workdir, "/workspace"])
    assert _contains(default, ["--chdir", "/workspace"])


async def test_a_node_without_bubblewrap_refuses_to_start_containers(tmp_path: Path) -> None:
    runtime = HostRuntime(bwrap=str(tmp_path / "no-bwrap"))
    with pytest.raises(StartError, match="bubblewrap is not installed"):
        await runtime.start(launch(tmp_path, command=["true"]))
    assert not (tmp_path / "state" / "launched").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="binds from descriptors need root")
async def test_a_sub_path_swapped_for_a_symlink_is_never_followed(tmp_path: Path) -> None:
    volume, outside = tmp_path / "pvc", tmp_path / "outside"
    outside.mkdir()
    volume.mkdir()
    (volume / "runs").symlink_to(outside)
    bind = Bind(volume / "runs", "/data", within=volume)
    with pytest.raises(StartError, match="cannot open"):
        await HostRuntime().start(launch(tmp_path, command=["true"], binds=[bind]))


def _tree_once_grown(root: int, size: int) -> set[int]:
    """The process tree of `root` once it has `size` processes (within 5 s)."""
    for _ in range(250):
        if len(process_tree(root)) == size:
            break
        time.sleep(0.02)
    tree = process_tree(root)
    assert len(tree) == size, tree
    return tree


def test_the_process_tree_holds_every_live_descendant_and_no_other() -> None:
    """A shell, its background sleep, a subshell and the subshell's sleep: four processes."""
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & (sleep 30 & wait) & wait"],
                             start_new_session=True)
    try:
        tree = _tree_once_grown(shell.pid, 4)
        assert shell.pid in tree
        assert os.getpid() not in tree
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_killing_the_tree_ends_what_left_the_process_group() -> None:
    """A process that made a session of its own (as a container's namespace init does) is
    out of reach of the group kill; killing the tree ends it too."""
    shell = subprocess.Popen(["sh", "-c", 'setsid sh -c "sleep 30 & wait" & wait'],
                             start_new_session=True)
    try:
        tree = _tree_once_grown(shell.pid, 3)
        asyncio.run(_until_ended(kill_tree(shell.pid), 10))
        shell.wait(timeout=10)
        assert all(_gone(pid) for pid in tree), [p for p in tree if not _gone(p)]
    finally:
        for pid in process_tree(shell.pid) - {shell.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()


@pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")
async def test_ended_containers_leave_no_zombie_and_no_waiting_thread(tmp_path: Path) -> None:
    runtime = HostRuntime()
    threads = threading.active_count()
    launches = [launch(tmp_path / str(i), args=["sh", "-c", f"exit {i}"], name=f"c{i}",
                       state_dir=tmp_path / str(i) / "state", log_path=tmp_path / f"{i}.log")
                for i in range(3)]
    for one in launches:
        await runtime.start(one)
    assert threading.active_count() == threads
    codes = [(await runtime.wait(one)).exit_code for one in launches]
    assert codes == [0, 1, 2]
    wrappers = {int((one.state_dir / "pid").read_text()) for one in launches}
    for _ in range(100):
        runtime._reap()
        if not runtime._children:
            break
        await asyncio.sleep(0.02)
    assert not runtime._children
    assert all(_reaped(pid) for pid in wrappers)


def test_a_container_without_a_command_fails_before_anything_is_made(tmp_path: Path) -> None:
    with pytest.raises(StartError, match="neither command nor args"):
        asyncio.run(HostRuntime().start(launch(tmp_path)))
    assert not (tmp_path / "state").exists()


def _reaped(pid: int) -> bool:
    """Not even a zombie: its parent has collected it."""
    return not os.path.exists(f"/proc/{pid}")
