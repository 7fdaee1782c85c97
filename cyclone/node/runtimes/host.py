"""The host runtime: a container's command on this machine in a bubblewrap mount namespace.

Each container runs under a small shell wrapper in its own session, so it outlives the agent
process; the wrapper records its pid and the exit code in the container's state directory,
which is all a restarted agent needs to reattach (wait for it, or read how it ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from cyclone.node.runtimes.base import (
    ContainerExited,
    ContainerLaunch,
    ContainerProgress,
    ContainerRunning,
    StartError,
)

WRAPPER = Path(__file__).with_name("wrapper.sh")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT_SECONDS = 10.0
"""How long a launched container may take to record its pid before it is deemed lost."""


def image_name(image: str) -> str:
    """An image reference without its tag or digest (`reg:5000/a/b:1.0` → `reg:5000/a/b`)."""
    image = image.split("@", 1)[0]
    head, _, last = image.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def host_target(path: str) -> str:
    """A container path with the host's symlinks resolved (`/var/run/x` → `/run/x`).

    The container sees the host's tree, so both name the same place; bubblewrap can only
    create missing mount points along a path without symlinks.
    """
    return os.path.realpath(path)


def private_working_dir(launch: ContainerLaunch) -> bool:
    """Whether the working directory is the container's own: no volume covers it and on the
    host it is missing or an empty directory (such as a mount point left by an earlier
    container), so concurrent containers must not share what they write there. It is bound
    before the volumes, so volumes mounted below it stay visible."""
    if not launch.working_dir:
        return False
    target = host_target(launch.working_dir)
    for bind in launch.binds:
        mount = host_target(bind.target)
        if target == mount or target.startswith(mount.rstrip("/") + "/"):
            return False
    if not os.path.exists(target):
        return True
    return os.path.isdir(target) and not os.listdir(target)


def _children(parents: set[int]) -> set[int]:
    children = set()
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) in parents and fields[0] not in ("Z", "X"):
                children.add(int(entry.name))
    return children


def container_command_pid(wrapper_pid: int) -> int | None:
    """The host pid of a container's command: wrapper → bwrap → namespace init → command."""
    level = {wrapper_pid}
    for _ in range(3):
        level = _children(level)
        if not level:
            return None
    return min(level)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _read_int(path: Path, *, complete_line: bool = False) -> int | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    if complete_line and not text.endswith("\n"):
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


class HostRuntime:
    name = "host"

    def __init__(
        self,
        image_overlays: dict[str, dict[str, Path]] | None = None,
        *,
        image_entrypoints: dict[str, list[str]] | None = None,
        bwrap: str = "/usr/bin/bwrap",
    ) -> None:
        self.image_overlays = {image_name(k): v for k, v in (image_overlays or {}).items()}
        self.image_entrypoints = {image_name(k): v for k, v in (image_entrypoints or {}).items()}
        self.bwrap = bwrap
        self._children: dict[int, asyncio.subprocess.Process] = {}

    def image_id(self, image: str) -> str:
        return f"host://{image_name(image)}"

    def container_id(self, launch: ContainerLaunch) -> str:
        digest = hashlib.sha256(f"{launch.pod_uid}/{launch.name}".encode()).hexdigest()
        return f"host://{digest[:40]}"

    def argv(self, launch: ContainerLaunch) -> list[str]:
        """The full command line: bwrap, its binds, then the container's command."""
        command = launch.command or self.image_entrypoints.get(image_name(launch.image), [])
        program = [*command, *launch.args]
        if not program:
            raise StartError(
                f"container {launch.name!r} has neither command nor args, and the host runtime"
                f" does not know the entrypoint of image {launch.image!r}"
            )
        argv = [self.bwrap, "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--unshare-uts", "--hostname", launch.pod_name[:63].rstrip("-.") or "pod",
                "--unshare-pid", "--die-with-parent"]
        private = private_working_dir(launch)
        if private and launch.working_dir:
            argv += ["--bind", str(launch.state_dir / "workdir"), host_target(launch.working_dir)]
        for bind in launch.binds:
            argv += ["--ro-bind" if bind.read_only else "--bind", str(bind.source),
                     host_target(bind.target)]
        for target, source in self.image_overlays.get(image_name(launch.image), {}).items():
            argv += ["--ro-bind", str(source), host_target(target)]
        if launch.working_dir:
            if not private:
                argv += ["--dir", host_target(launch.working_dir)]
            argv += ["--chdir", launch.working_dir]
        return [*argv, "--", *program]

    async def start(self, launch: ContainerLaunch) -> None:
        argv = self.argv(launch)
        launch.state_dir.mkdir(parents=True, exist_ok=True)
        if private_working_dir(launch):
            (launch.state_dir / "workdir").mkdir(exist_ok=True)
        try:
            fd = os.open(launch.state_dir / "launched", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise StartError(f"container {launch.name!r} was already launched") from None
        os.close(fd)
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {"PATH": DEFAULT_PATH, "HOME": "/root", "HOSTNAME": launch.pod_name, **launch.env}
        log = os.open(launch.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            process = await asyncio.create_subprocess_exec(
                "/bin/sh", str(WRAPPER), str(launch.state_dir), *argv,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                env=env, start_new_session=True,
            )
        finally:
            os.close(log)
        self._children[process.pid] = process
        await self._until_pid_recorded(launch)

    async def _until_pid_recorded(self, launch: ContainerLaunch) -> None:
        """Wait (briefly) until the wrapper has recorded its pid: the container then runs."""
        delay = 0.001
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while _read_int(launch.state_dir / "pid") is None and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def inspect(self, launch: ContainerLaunch) -> ContainerProgress:
        state = launch.state_dir
        launched = state / "launched"
        if not launched.exists():
            return None
        container_id = self.container_id(launch)
        code = _read_int(state / "exit", complete_line=True)
        if code is not None:
            return self._exited(launch, code)
        pid = _read_int(state / "pid")
        if pid is None:
            if time.time() - launched.stat().st_mtime < START_TIMEOUT_SECONDS:
                return ContainerRunning(_mtime(launched), container_id)
            return ContainerExited(
                128, _mtime(launched), _mtime(launched), container_id,
                reason="StartError", message="the container was lost before it started",
            )
        if self._alive(pid, launch):
            return ContainerRunning(_mtime(state / "pid"), container_id)
        code = _read_int(state / "exit", complete_line=True)
        if code is not None:
            return self._exited(launch, code)
        finished = datetime.now(UTC)
        return ContainerExited(
            137, _mtime(state / "pid"), finished, container_id,
            message="the container was killed before it recorded its exit code",
        )

    def _exited(self, launch: ContainerLaunch, code: int) -> ContainerExited:
        state = launch.state_dir
        started = _mtime(state / "pid") if (state / "pid").exists() else _mtime(state / "launched")
        self._forget(launch)
        return ContainerExited(code, started, _mtime(state / "exit"), self.container_id(launch))

    def _forget(self, launch: ContainerLaunch) -> None:
        pid = _read_int(launch.state_dir / "pid")
        if pid is not None:
            self._children.pop(pid, None)

    def _alive(self, pid: int, launch: ContainerLaunch) -> bool:
        """Whether the wrapper of this container still runs (not a zombie, not a reused pid)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return False
        if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
            return False
        return str(launch.state_dir).encode() in cmdline

    async def wait(self, launch: ContainerLaunch) -> ContainerExited:
        delay = 0.02
        while True:
            progress = await self.inspect(launch)
            if isinstance(progress, ContainerExited):
                return progress
            pid = _read_int(launch.state_dir / "pid")
            if pid is None:
                await asyncio.sleep(delay)
            else:
                await self._wait_pid(pid, at_most=min(delay * 10, 1.0))
            delay = min(delay * 2, 0.5)

    async def _wait_pid(self, pid: int, at_most: float) -> None:
        """Return when the process ends (through a pidfd when possible) or after `at_most`."""
        try:
            pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            await asyncio.sleep(at_most)
            return
        loop = asyncio.get_running_loop()
        ended = loop.create_future()
        loop.add_reader(pidfd, lambda: ended.done() or ended.set_result(None))
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended, at_most)
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)

    async def stop(self, launch: ContainerLaunch, grace_seconds: float) -> None:
        """SIGTERM the container's command, SIGKILL all that is left after the grace period.

        Only the command itself gets SIGTERM (bubblewrap would die of it at once and take the
        container with it, leaving no grace); the final SIGKILL goes to the whole process group,
        and the pid namespace ends whatever left the group.
        """
        progress = await self.inspect(launch)
        pid = _read_int(launch.state_dir / "pid")
        if isinstance(progress, ContainerRunning):
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while pid is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                pid = _read_int(launch.state_dir / "pid")
            if pid is not None and grace_seconds > 0:
                await self._terminate(launch, pid, grace_seconds)
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            if isinstance(progress, ContainerRunning):
                await self.wait(launch)

    async def _terminate(self, launch: ContainerLaunch, pid: int, grace_seconds: float) -> None:
        """SIGTERM the container's command once it can be found; wait up to the grace period."""
        deadline = time.monotonic() + grace_seconds
        signalled = False
        while (remaining := deadline - time.monotonic()) > 0:
            if not signalled:
                command = container_command_pid(pid)
                if command is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(command, signal.SIGTERM)
                    signalled = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait(launch), remaining if signalled else 0.05)
                return

    @staticmethod
    def _signal(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
