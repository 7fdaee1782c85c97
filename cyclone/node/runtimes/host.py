"""The host runtime: a container's command on this machine, in a bubblewrap sandbox.

What the sandbox shows and who the command runs as is decided in `sandbox.py`. Each container
runs under a small shell wrapper in its own session, so it outlives the agent process; the
wrapper records its pid and the exit code in the container's state directory, which is all a
restarted agent needs to reattach (wait for it, or read how it ended). The wrapper itself
stays root; only the sandbox (bubblewrap and what it runs) gets the unprivileged host uid.

The wrapper, bubblewraps and setpriv above the command have a fixed environment (`WRAPPER_ENV`):
the container's variables (`LD_PRELOAD`, `PATH`...) reach only the bubblewrap that runs the
command, as `--setenv` options in a memory file (`--args FD`), never a process run as root.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cyclone.node.runtimes.base import (
    ContainerExited,
    ContainerLaunch,
    ContainerProgress,
    ContainerRunning,
    StartError,
)
from cyclone.node.runtimes.sandbox import (
    DEFAULT_HOME,
    DEFAULT_WORKDIR,
    NOBODY,
    SandboxMount,
    SandboxPlan,
    args_file,
    env_args,
    isolation_args,
    setpriv_args,
    view_args,
)
from cyclone.node.volumes import open_beneath

WRAPPER = Path(__file__).with_name("wrapper.sh")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WRAPPER_ENV = {"PATH": DEFAULT_PATH}
"""The whole environment of the wrapper and of the bubblewraps and setpriv it starts."""
KILL_TIMEOUT_SECONDS = 10.0
"""How long stopping a container waits for its killed processes to be gone."""
START_TIMEOUT_SECONDS = 10.0
"""How long a launched container may take to record its pid before it is deemed lost."""
SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
"""Where an existing working directory is the host's own (used read-only, as it is)."""


def image_name(image: str) -> str:
    """An image reference without its tag or digest (`reg:5000/a/b:1.0` → `reg:5000/a/b`)."""
    image = image.split("@", 1)[0]
    head, _, last = image.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def image_entry(table: Mapping[str, Any], image: str) -> Any:
    """``table``'s entry for ``image``, keyed by image names without tags: its own name's,
    else that of its name without its leading registry and path parts, one at a time, so
    ``mirror.example/cyclone/resolver-git:0.1.0`` finds ``cyclone/resolver-git``."""
    parts = image_name(image).split("/")
    for start in range(len(parts)):
        entry = table.get("/".join(parts[start:]))
        if entry is not None:
            return entry
    return None


def host_target(path: str) -> str:
    """A container path with the host's symlinks resolved (`/var/run/x` → `/run/x`).

    The container sees the host's tree, so both name the same place; bubblewrap can only
    create missing mount points along a path without symlinks.
    """
    return os.path.realpath(path)


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def private_working_dir(launch: ContainerLaunch) -> bool:
    """Whether the working directory is the container's own private, writable directory.

    It is, unless a volume covers it (then it is that volume) or it is a non-empty directory
    of the host's system tree (`/usr/src/app` of the host, used read-only). So containers
    never share what they write there, and never write into the host. It is bound before the
    volumes, so volumes mounted below it stay visible.
    """
    target = host_target(launch.working_dir or DEFAULT_WORKDIR)
    if any(_within(target, host_target(bind.target)) for bind in launch.binds):
        return False
    if not os.path.isdir(target) or not os.listdir(target):
        return True
    return not any(_within(target, tree) for tree in SYSTEM_TREES)


def command_env(launch: ContainerLaunch) -> dict[str, str]:
    """The environment of a container's command: a default PATH, HOME and HOSTNAME, then the
    container's variables (which may override them)."""
    return {"PATH": DEFAULT_PATH, "HOME": DEFAULT_HOME, "HOSTNAME": launch.pod_name,
            **launch.env}


def _env_args(launch: ContainerLaunch) -> list[str]:
    try:
        return env_args(command_env(launch))
    except ValueError as error:
        raise StartError(f"container {launch.name!r}: {error}") from None


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


def process_tree(root: int) -> set[int]:
    """`root` and every live process below it."""
    tree, level = {root}, {root}
    while level := _children(level) - tree:
        tree |= level
    return tree


def kill_tree(root: int) -> list[int]:
    """SIGKILL `root` and everything below it, whatever session or group it is in; returns
    pidfds of what was killed, for `_until_ended`.

    The tree is stopped first (SIGSTOP, through pidfds so no reused pid is signalled) until
    it shows no new process, since a process that forks while its parent is killed would
    be left out; the namespace init of a container caught starting up would then outlive
    its bubblewrap (its parent-death signal is not armed yet) and run on."""
    stopped: dict[int, int] = {}
    seen: set[int] = set()
    while new := process_tree(root) - seen:
        seen |= new
        for pid in new:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            stopped[pid] = fd
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fd, signal.SIGSTOP)
        if root not in stopped:
            break
    for fd in stopped.values():
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    return list(stopped.values())


def _open_pidfds(pids: Iterable[int]) -> list[int]:
    fds = []
    for pid in pids:
        with contextlib.suppress(OSError, AttributeError):
            fds.append(os.pidfd_open(pid))
    return fds


def container_command_pid(wrapper_pid: int, levels: int = 4) -> int | None:
    """The host pid of a container's command: wrapper → outer bwrap → inner bwrap → its
    namespace init → command (3 levels when one bwrap does it all)."""
    level = {wrapper_pid}
    for _ in range(levels):
        level = _children(level)
        if not level:
            return None
    return min(level)


async def _until_ended(pidfds: list[int], at_most: float) -> None:
    """Wait (up to `at_most` in all) until the processes of these pidfds have ended; close them.

    The wrapper ends as soon as it is killed, but what ran in the container's pid namespace
    dies only when the kernel gets to it; a stopped container has left nothing behind."""
    loop = asyncio.get_running_loop()
    waiting = []
    for fd in pidfds:
        ended = loop.create_future()
        loop.add_reader(fd, lambda done=ended: done.done() or done.set_result(None))
        waiting.append(ended)
    try:
        if waiting:
            await asyncio.wait(waiting, timeout=at_most)
    finally:
        for fd in pidfds:
            loop.remove_reader(fd)
            os.close(fd)


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
    """Runs containers on this host, each in its own bubblewrap sandbox.

    `hidden_paths` are host paths no container may see besides the built-in list of
    `sandbox.py` (the data directory of `cyclone up`, the CLI's config file); the node's own
    data directory comes with each launch. `sandbox_uid`/`sandbox_gid` are the host ids every
    sandbox runs as when the agent runs as root (otherwise the agent's own ids are used);
    inside its user namespace a container has the uid/gid it asks for, `NOBODY` by default.
    """

    name = "host"

    def __init__(
        self,
        image_overlays: dict[str, dict[str, Path]] | None = None,
        *,
        image_entrypoints: dict[str, list[str]] | None = None,
        bwrap: str = "/usr/bin/bwrap",
        hidden_paths: Iterable[Path | str] = (),
        sandbox_uid: int = NOBODY,
        sandbox_gid: int = NOBODY,
    ) -> None:
        self.image_overlays = {image_name(k): v for k, v in (image_overlays or {}).items()}
        self.image_entrypoints = {image_name(k): v for k, v in (image_entrypoints or {}).items()}
        if sandbox_uid == 0 or sandbox_gid == 0:
            raise ValueError("the sandbox's host uid and gid must not be root's (0)")
        self.bwrap = bwrap
        self.hidden_paths = tuple(Path(p) for p in hidden_paths)
        self.privileged = os.geteuid() == 0
        self.host_ids = (sandbox_uid, sandbox_gid) if self.privileged else (
            os.geteuid(), os.getegid())
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        """The wrappers this runtime started and has not reaped yet (`_reap`)."""
        self._sandbox_checked = False

    @property
    def volume_owner(self) -> tuple[int, int] | None:
        """Who must own the directories the agent makes for a pod (None: leave them)."""
        return self.host_ids if self.privileged else None

    def image_id(self, image: str) -> str:
        return f"host://{image_name(image)}"

    def container_id(self, launch: ContainerLaunch) -> str:
        digest = hashlib.sha256(f"{launch.pod_uid}/{launch.name}".encode()).hexdigest()
        return f"host://{digest[:40]}"

    def plan(self, launch: ContainerLaunch) -> SandboxPlan:
        """What the container sees: its private working directory, volumes and overlays."""
        mounts: list[SandboxMount] = []
        if private_working_dir(launch):
            target = host_target(launch.working_dir or DEFAULT_WORKDIR)
            mounts.append(SandboxMount(launch.state_dir / "workdir", target))
        for bind in launch.binds:
            mounts.append(SandboxMount(bind.source, host_target(bind.target), bind.read_only,
                                       bind.within))
        for target, source in (image_entry(self.image_overlays, launch.image) or {}).items():
            mounts.append(SandboxMount(Path(source), host_target(target), read_only=True))
        hidden = [*self.hidden_paths, *([launch.node_dir] if launch.node_dir else [])]
        return SandboxPlan(
            uid=NOBODY if launch.run_as_user is None else launch.run_as_user,
            gid=NOBODY if launch.run_as_group is None else launch.run_as_group,
            hostname=launch.pod_name[:63].rstrip("-.") or "pod",
            mounts=tuple(mounts),
            chdir=launch.working_dir or DEFAULT_WORKDIR,
            hidden=tuple(hidden),
        )

    def program(self, launch: ContainerLaunch) -> list[str]:
        """The command the container runs (its image's entrypoint when it names none)."""
        command = launch.command or image_entry(self.image_entrypoints, launch.image) or []
        program = [*command, *launch.args]
        if not program:
            raise StartError(
                f"container {launch.name!r} has neither command nor args, and the host runtime"
                f" does not know the entrypoint of image {launch.image!r}"
            )
        return program

    def argv(
        self,
        launch: ContainerLaunch,
        source_args: Callable[[SandboxMount], list[str]] | None = None,
        env_fd: int | None = None,
    ) -> list[str]:
        """The full command line: bwrap as root building the view, the privilege drop, and
        bwrap isolating the command (one unprivileged bwrap when the agent is not root).

        `env_fd`: the file the bwrap that runs the command reads its environment from."""
        program = self.program(launch)
        plan = self.plan(launch)
        env = [] if env_fd is None else ["--args", str(env_fd)]
        if not self.privileged:
            return [self.bwrap, *env, *isolation_args(plan, nested=False),
                    *view_args(plan, source_args, nested=False), "--", *program]
        return [self.bwrap, *view_args(plan, source_args), "--",
                *setpriv_args(*self.host_ids), self.bwrap, *env, *isolation_args(plan), "--",
                *program]

    @property
    def _command_depth(self) -> int:
        return 4 if self.privileged else 3

    async def check_sandbox(self) -> None:
        """Make sure a sandbox can be created here; raise `StartError` saying why not.

        Never falls back to running without one.
        """
        if self._sandbox_checked:
            return
        if not os.access(self.bwrap, os.X_OK):
            raise StartError(
                f"bubblewrap is not installed at {self.bwrap}: the host runtime runs every "
                "container in a bubblewrap sandbox (install the bubblewrap package)")
        drop = setpriv_args(*self.host_ids) if self.privileged else []
        if drop and shutil.which(drop[0]) is None:
            raise StartError("setpriv (util-linux) is not installed: the host runtime needs it"
                             " to run sandboxes as an unprivileged user")
        probe = await asyncio.create_subprocess_exec(
            *drop, self.bwrap, "--unshare-user", "--disable-userns", "--unshare-pid",
            "--ro-bind", "/", "/", "--proc", "/proc", "--cap-drop", "ALL", "--", "true",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, cwd="/",
        )
        _, stderr = await probe.communicate()
        if probe.returncode != 0:
            raise StartError(
                "cannot create a container sandbox on this node (bubblewrap needs unprivileged"
                " user namespaces: sysctl user.max_user_namespaces > 0, and"
                " kernel.unprivileged_userns_clone=1 where it exists): "
                + stderr.decode(errors="replace").strip()
            )
        self._sandbox_checked = True

    def _open_sources(self, launch: ContainerLaunch) -> dict[SandboxMount, int]:
        """Each mount's source opened for the root bwrap to bind (a subPath from its volume one
        component at a time; never through a symlink): what is bound stays inside the volume
        even if a container of the pod swaps a directory of a shared volume for a symlink."""
        fds: dict[SandboxMount, int] = {}
        try:
            for mount in self.plan(launch).mounts:
                if mount in fds:
                    continue
                if mount.within is not None:
                    fd = open_beneath(mount.within, mount.source)
                else:
                    fd = os.open(mount.source, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
                fds[mount] = fd
                if stat.S_ISLNK(os.fstat(fd).st_mode):
                    raise StartError(f"container {launch.name!r}: the source of {mount.target}"
                                     f" is a symlink ({mount.source})")
        except OSError as error:
            self._close(fds)
            raise StartError(
                f"container {launch.name!r}: cannot open {error.filename}: {error.strerror}"
            ) from None
        except StartError:
            self._close(fds)
            raise
        return fds

    @staticmethod
    def _close(fds: dict[SandboxMount, int]) -> None:
        for fd in fds.values():
            os.close(fd)

    async def start(self, launch: ContainerLaunch) -> None:
        self.program(launch)
        env = _env_args(launch)
        await self.check_sandbox()
        launch.state_dir.mkdir(parents=True, exist_ok=True)
        if private_working_dir(launch):
            workdir = launch.state_dir / "workdir"
            workdir.mkdir(exist_ok=True)
            if self.volume_owner is not None:
                os.chown(workdir, *self.volume_owner)
        fds = self._open_sources(launch) if self.privileged else {}
        try:
            env_fd = args_file(env)
        except BaseException:
            self._close(fds)
            raise

        def by_fd(mount: SandboxMount) -> list[str]:
            option = "--ro-bind-fd" if mount.read_only else "--bind-fd"
            return [option, str(fds[mount]), mount.target]

        try:
            argv = self.argv(launch, by_fd if self.privileged else None, env_fd)
            try:
                fd = os.open(launch.state_dir / "launched",
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                raise StartError(f"container {launch.name!r} was already launched") from None
            os.close(fd)
            launch.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            log = os.open(launch.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
                          0o600)
            try:
                self._spawn([str(launch.state_dir), *argv], log,
                            [*fds.values(), env_fd])
            finally:
                os.close(log)
        finally:
            self._close(fds)
            os.close(env_fd)
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
        self._reap()
        return ContainerExited(code, started, _mtime(state / "exit"), self.container_id(launch))

    def _spawn(self, wrapper_args: list[str], log: int, pass_fds: list[int]
               ) -> subprocess.Popen[bytes]:
        """Start the wrapper of a container, its output going to `log`.

        Forking blocks as briefly as `asyncio.create_subprocess_exec` does (which forks
        in the event loop too); unlike it, nothing waits for the child in a thread of its
        own, as Python 3.11's asyncio does for every child: the container's end is known
        from its state directory and a pidfd, and `_reap` collects the wrapper."""
        self._reap()
        process = subprocess.Popen(
            ["/bin/sh", str(WRAPPER), *wrapper_args], stdin=subprocess.DEVNULL,
            stdout=log, stderr=log, env=WRAPPER_ENV, start_new_session=True, cwd="/",
            pass_fds=pass_fds,
        )
        self._children[process.pid] = process
        return process

    def _reap(self) -> None:
        """Collect the wrappers that have ended, so that none lingers as a zombie."""
        for pid, process in list(self._children.items()):
            if process.poll() is not None:
                del self._children[pid]

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
        pidfds = _open_pidfds([pid])
        if not pidfds:
            await asyncio.sleep(at_most)
            return
        await _until_ended(pidfds, at_most)

    async def stop(self, launch: ContainerLaunch, grace_seconds: float) -> None:
        """SIGTERM the container's command, SIGKILL all that is left after the grace period.

        Only the command itself gets SIGTERM (bubblewrap would die of it at once and take the
        container with it, leaving no grace); the final SIGKILL goes to every process below
        the wrapper (`kill_tree`) and to its process group.
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
            running = isinstance(progress, ContainerRunning) and self._alive(pid, launch)
            tree = kill_tree(pid) if running else []
            self._signal(pid, signal.SIGKILL)
            if isinstance(progress, ContainerRunning):
                await self.wait(launch)
            await _until_ended(tree, KILL_TIMEOUT_SECONDS)

    async def _terminate(self, launch: ContainerLaunch, pid: int, grace_seconds: float) -> None:
        """SIGTERM the container's command once it can be found; wait up to the grace period."""
        deadline = time.monotonic() + grace_seconds
        signalled = False
        while (remaining := deadline - time.monotonic()) > 0:
            if not signalled:
                command = container_command_pid(pid, self._command_depth)
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
