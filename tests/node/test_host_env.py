"""A container's environment reaches its command only, never a process above it.

The wrapper, the bubblewraps and setpriv of the host runtime run as root when the agent does;
a tenant's `LD_PRELOAD`, `PATH` or `BASH_ENV` in their environment would run its code there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from cyclone.node import HostRuntime
from cyclone.node.runtimes.base import StartError
from cyclone.node.runtimes.host import DEFAULT_PATH, WRAPPER_ENV
from cyclone.node.runtimes.sandbox import NOBODY
from cyclone.node.volumes import Bind
from node.helpers import container_launch as launch

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")

MARKER_SOURCE = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void) {
    FILE *f = fopen(MARKER, "a");
    if (f) { fprintf(f, "%d %d\n", (int)getuid(), (int)geteuid()); fclose(f); }
}
"""
ODD_VALUE = "a b\nc=d $(HOME) 'é'"


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    """A directory the tenant writes (its PVC), seen at the same path inside the sandbox."""
    path = tmp_path / "pvc"
    path.mkdir(mode=0o777)
    path.chmod(0o777)
    return path


@pytest.fixture
def preload(volume: Path) -> Path:
    """A library that appends `uid euid` to `marks` in the volume in every process loading it."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("needs gcc")
    source = volume / "mark.c"
    source.write_text(MARKER_SOURCE)
    library = volume / "mark.so"
    subprocess.run([gcc, "-shared", "-fPIC", f'-DMARKER="{volume}/marks"', "-o", str(library),
                    str(source)], check=True)
    library.chmod(0o755)
    return library


def _nul_env(data: bytes) -> dict[str, str]:
    return dict(item.split("=", 1) for item in data.decode().split("\0") if item)


def _tree(root: int) -> Iterator[int]:
    """`root` and every process below it."""
    parents = {root}
    yield root
    while parents:
        children = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) in parents:
                children.add(int(entry))
        yield from children
        parents = children


class Process(NamedTuple):
    name: str
    env: dict[str, str]
    fds: set[str]
    cmdline: bytes


def _snapshot(root: int) -> list[Process]:
    processes = []
    for pid in _tree(root):
        proc = Path(f"/proc/{pid}")
        try:
            processes.append(Process(
                (proc / "comm").read_text().strip(), _nul_env((proc / "environ").read_bytes()),
                {os.readlink(fd) for fd in (proc / "fd").iterdir()},
                (proc / "cmdline").read_bytes(),
            ))
        except OSError:
            continue
    return processes


async def test_a_tenant_ld_preload_is_loaded_by_its_command_only(
    tmp_path: Path, volume: Path, preload: Path
) -> None:
    env = {"LD_PRELOAD": str(preload), "BASH_ENV": str(preload), "ODD": ODD_VALUE,
           "HOME": "/home/tenant"}
    container = launch(tmp_path, command=["env", "-0"], env=env,
                       binds=[Bind(volume, str(volume))])
    await HostRuntime().start(container)
    exited = await asyncio.wait_for(HostRuntime().wait(container), 20)
    assert exited.exit_code == 0, container.log_path.read_text()
    marks = (volume / "marks").read_text().splitlines()
    assert marks and set(marks) == {f"{NOBODY} {NOBODY}"}
    assert _nul_env(container.log_path.read_bytes()) == {
        "PATH": DEFAULT_PATH, "HOSTNAME": "p", "PWD": "/workspace", **env,
    }
    again = await asyncio.wait_for(HostRuntime().wait(container), 5)
    assert again.exit_code == 0 and again.finished_at == exited.finished_at


async def test_no_process_above_the_command_holds_the_container_env(tmp_path: Path) -> None:
    env = {"TENANT_TOKEN": "s3cret", "PATH": f"{tmp_path}:/usr/bin:/bin"}
    container = launch(tmp_path, command=["sleep", "30"], env=env)
    runtime = HostRuntime()
    await runtime.start(container)
    try:
        wrapper = int((container.state_dir / "pid").read_text())
        for _ in range(200):
            processes = _snapshot(wrapper)
            if any(process.name == "sleep" for process in processes):
                break
            await asyncio.sleep(0.025)
    finally:
        await runtime.stop(container, 0)
    command = [process for process in processes if process.name == "sleep"]
    above = [process for process in processes if process.name != "sleep"]
    assert [process.env["TENANT_TOKEN"] for process in command] == ["s3cret"]
    assert not any(fd.startswith("/memfd:") for fd in command[0].fds), command[0].fds
    assert {process.name for process in above} >= {"sh", "bwrap"}
    assert all(process.env.keys() <= {*WRAPPER_ENV, "PWD"}
               and process.env["PATH"] == DEFAULT_PATH for process in above), above
    assert not any(b"s3cret" in process.cmdline for process in processes)


def test_the_bwrap_running_the_command_reads_its_env_from_the_given_file(
    tmp_path: Path,
) -> None:
    runtime = HostRuntime()
    for privileged in (True, False):
        runtime.privileged = privileged
        argv = runtime.argv(launch(tmp_path, command=["true"]), env_fd=7)
        last = len(argv) - 1 - argv[::-1].index("/usr/bin/bwrap")
        assert argv[last:last + 3] == ["/usr/bin/bwrap", "--args", "7"]
        assert argv.count("--args") == 1


@pytest.mark.parametrize(("env", "message"), [
    ({"A=B": "x"}, "name 'A=B' is not valid"),
    ({"": "x"}, "name '' is not valid"),
    ({"A": "x\0y"}, "'A' holds a NUL character"),
])
async def test_a_variable_no_environment_can_hold_is_a_start_error(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(StartError, match=f"container 'c': environment variable {message}"):
        await HostRuntime().start(launch(tmp_path, command=["true"], env=env))
    assert not (tmp_path / "state" / "launched").exists()
