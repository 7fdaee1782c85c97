"""The podman/docker runtime: each container of a pod runs from its image through the CLI.

The pod layout is the host runtime's (volumes, termination message file, results, env,
working directory), given to the engine as bind mounts. The engine keeps each container under
a name derived from the pod's uid and the container's name (see `container_argv.py`), so
`inspect` after an agent restart finds what runs or ran, and a container is never created
twice. Container output goes straight into the agent's log file: podman's `passthrough` log
driver hands the container the file the CLI was started with; docker has no such driver, so
a detached `docker logs --follow` copies it there.

podman runs with a `containers.conf` and `storage.conf` of Cyclone's own under the runtime's
state directory (images and containers stay inside the data dir; cgroupfs, file events, the
host's rlimits: a VM that withholds CAP_SYS_RESOURCE refuses podman's default rlimits).
Images that are not present are loaded from Cyclone's image archives (`dist/images`, listed
in its `index.json`) before the image's pull policy is applied.

The CLI runs with Cyclone's own environment; a container's variables reach the engine in an
owner-only env file, removed once the container is created. A subPath is opened from its
volume without following symlinks and that descriptor is bind-mounted on a private mount
point, which the engine binds (a directory swapped for a symlink cannot lead it out of the
volume); it is taken down after `init`/`start`. Only a root agent can do this.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import resource
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from cyclone.node.runtimes.base import (
    ContainerExited,
    ContainerLaunch,
    ContainerProgress,
    StartError,
)
from cyclone.node.runtimes.container_argv import (
    LABEL_POD_UID,
    NOBODY,
    ArgvError,
    container_name,
    create_command,
    progress_of,
    pull_flag,
    qualified_image,
    stop_command,
)
from cyclone.node.volumes import open_beneath

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 20.0
COMMAND_TIMEOUT_SECONDS = 300.0
"""A create may pull an image; nothing else the runtime asks takes long."""
STOP_SLACK_SECONDS = 30.0
MS_BIND = 4096
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


class RuntimeUnavailable(Exception):
    """The container CLI is missing or its engine does not answer (one line saying which)."""


def host_rlimits() -> dict[str, int]:
    """The rlimits containers get: this process's hard limits (nproc at most `pid_max`, which
    podman caps itself to), so the OCI runtime never has to raise one."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        pid_max = 32768
    limits = {"nofile": nofile, "nproc": nproc}
    return {k: (pid_max if v == resource.RLIM_INFINITY or (k == "nproc" and v > pid_max)
                else v) for k, v in limits.items()}


def _toml(value: str) -> str:
    return json.dumps(value)


def podman_config(root: Path, rlimits: dict[str, int]) -> tuple[str, str]:
    """The `containers.conf` and `storage.conf` of a podman kept under `root`."""
    ulimits = ", ".join(_toml(f"{k}={v}:{v}") for k, v in sorted(rlimits.items()))
    containers = (
        "[containers]\n"
        f"default_ulimits = [{ulimits}]\n"
        'log_driver = "passthrough"\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f"events_logfile_path = {_toml(str(root / 'events.log'))}\n"
        f"tmp_dir = {_toml(str(root / 'tmp'))}\n"
        f"volume_path = {_toml(str(root / 'volumes'))}\n"
    )
    storage = (
        "[storage]\n"
        'driver = "overlay"\n'
        f"runroot = {_toml(str(root / 'run'))}\n"
        f"graphroot = {_toml(str(root / 'storage'))}\n"
    )
    return containers, storage


def image_archives(images_dir: Path | None) -> dict[str, Path]:
    """Cyclone's image archives by qualified reference, from `index.json` of `images_dir`."""
    if images_dir is None:
        return {}
    try:
        index = json.loads((images_dir / "index.json").read_text())
    except (OSError, ValueError):
        return {}
    entries = index.get("images", []) if isinstance(index, dict) else index
    archives = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("reference") and entry.get("archive"):
            archive = images_dir / str(entry["archive"])
            with contextlib.suppress(ArgvError):
                archives[qualified_image(str(entry["reference"]))] = archive
    return archives


def _first_line(text: bytes) -> str:
    lines = [line.strip() for line in text.decode(errors="replace").splitlines()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or [line for line in lines if line] or ["no output"])[-1]


def _bind_fd(fd: int, target: Path) -> None:
    """Bind-mount what `fd` (an `O_PATH` descriptor of this process) names on `target`."""
    if _libc.mount(f"/proc/self/fd/{fd}".encode(), os.fsencode(target), None, MS_BIND,
                   None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(target))


def _unmount(target: Path) -> None:
    """Take down every mount on `target` (none: nothing to do)."""
    for _ in range(16):
        if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
            return


def _mount_point(target: Path, directory: bool) -> None:
    """An empty directory or file at `target`, in a directory only the agent writes."""
    _unmount(target)
    with contextlib.suppress(FileNotFoundError):
        (os.rmdir if stat.S_ISDIR(os.lstat(target).st_mode) else os.unlink)(target)
    if directory:
        target.mkdir(mode=0o700)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))


class ContainerCliRuntime:
    """Runs containers with `podman` or `docker` (their CLIs agree on what is used here)."""

    def __init__(self, engine: str, *, binary: str | None = None, state_dir: Path | None = None,
                 images_dir: Path | None = None) -> None:
        self.name = engine
        self.binary = binary or engine
        self.state_dir = state_dir
        self.images_dir = images_dir
        self.env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "HOME": os.environ.get("HOME", "/root")}
        for name in ("XDG_RUNTIME_DIR", "DOCKER_HOST", "DOCKER_CONFIG"):
            if name in os.environ:
                self.env[name] = os.environ[name]
        if engine == "podman" and state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            containers, storage = podman_config(state_dir, host_rlimits())
            (state_dir / "containers.conf").write_text(containers)
            (state_dir / "storage.conf").write_text(storage)
            self.env["CONTAINERS_CONF"] = str(state_dir / "containers.conf")
            self.env["CONTAINERS_STORAGE_CONF"] = str(state_dir / "storage.conf")
        self._image_locks: dict[str, asyncio.Lock] = {}
        self._present: set[str] = set()
        """Archived images known to be loaded (an image is not removed behind the agent)."""
        self._tasks: set[asyncio.Task] = set()

    @property
    def volume_owner(self) -> tuple[int, int] | None:
        """Who must own the directories the agent makes for a pod: whom containers run as by
        default (None: the agent cannot give files away)."""
        return (NOBODY, NOBODY) if os.geteuid() == 0 else None

    def check(self) -> None:
        """Raise `RuntimeUnavailable` unless the CLI is installed and its engine answers."""
        path = shutil.which(self.binary, path=self.env["PATH"])
        if path is None:
            raise RuntimeUnavailable(f"{self.name} is not installed ({self.binary} is not on "
                                     "PATH): install it, or use --runtime host")
        self.binary = path
        probe = ["info", "--format", "{{.Host.OCIRuntime.Name}}"] if self.name == "podman" \
            else ["version", "--format", "{{.Server.Version}}"]
        try:
            done = subprocess.run([path, *probe], env=self.env, capture_output=True,
                                  timeout=CHECK_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RuntimeUnavailable(f"{self.name} does not answer (`{self.name} "
                                     f"{probe[0]}` took over {CHECK_TIMEOUT_SECONDS:g}s)"
                                     ) from None
        if done.returncode != 0:
            raise RuntimeUnavailable(f"{self.name} does not answer: "
                                     f"{_first_line(done.stderr or done.stdout)}")

    def image_id(self, image: str) -> str:
        try:
            return f"{self.name}://{qualified_image(image)}"
        except ArgvError:
            return f"{self.name}://{image}"

    async def _cli(self, *args: str, stdout: int = -1, stderr: int = -1,
                   limit: float | None = COMMAND_TIMEOUT_SECONDS) -> tuple[int, bytes, bytes]:
        """Run the CLI, with Cyclone's environment only; a cancelled call kills it."""
        process = await asyncio.create_subprocess_exec(
            self.binary, *args, env=dict(self.env), stdin=subprocess.DEVNULL,
            stdout=stdout, stderr=stderr, cwd="/",
        )
        try:
            async with asyncio.timeout(limit):
                out, err = await process.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        return process.returncode or 0, out or b"", err or b""

    async def _inspect(self, name: str) -> dict | None:
        code, out, err = await self._cli("container", "inspect", name)
        if code != 0:
            if b"no such" in err.lower():
                return None
            raise StartError(f"{self.name} inspect {name}: {_first_line(err)}")
        documents = json.loads(out or b"[]")
        return documents[0] if documents else None

    async def inspect(self, launch: ContainerLaunch) -> ContainerProgress:
        return progress_of(self.name, await self._inspect(container_name(launch)),
                           datetime.now(UTC))

    def _private_dir(self, launch: ContainerLaunch) -> Path:
        """Where the runtime keeps what only the agent may see."""
        base = self.state_dir if self.state_dir is not None else launch.state_dir
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        return base

    def bind_sources(self, launch: ContainerLaunch) -> tuple[list[str], list[Path]]:
        """Each bind's host path, and the private mounts made for subPaths (to be taken down
        with `release_sources` once the engine has mounted them)."""
        sources: list[str] = []
        mounted: list[Path] = []
        try:
            for index, bind in enumerate(launch.binds):
                if bind.within is None:
                    if bind.source.is_symlink():
                        raise StartError(f"container {launch.name!r}: the source of "
                                         f"{bind.target} is a symlink ({bind.source})")
                    sources.append(str(bind.source))
                    continue
                target = self._mount_root(launch, bind.target) / \
                    f"{launch.pod_uid}-{launch.name}-{index}"
                self._mount_sub_path(launch, bind.within, bind.source, bind.target, target)
                mounted.append(target)
                sources.append(str(target))
        except BaseException:
            release_sources(mounted)
            raise
        return sources, mounted

    def _mount_root(self, launch: ContainerLaunch, mount_path: str) -> Path:
        """Where subPaths are mounted: never in a pod's directory (deleted recursively)."""
        if self.state_dir is None:
            raise StartError(f"container {launch.name!r}: the subPath mount at {mount_path} "
                             f"needs a state directory for the {self.name} runtime")
        root = self._private_dir(launch) / "binds"
        root.mkdir(exist_ok=True, mode=0o700)
        return root

    def _mount_sub_path(self, launch: ContainerLaunch, volume: Path, source: Path,
                        mount_path: str, target: Path) -> None:
        if os.geteuid() != 0:
            raise StartError(f"container {launch.name!r}: the subPath mount at {mount_path} "
                             f"needs the agent to run as root under the {self.name} runtime")
        try:
            fd = open_beneath(volume, source)
        except OSError as error:
            raise StartError(f"container {launch.name!r}: cannot open {error.filename}: "
                             f"{error.strerror}") from None
        try:
            resolved = os.readlink(f"/proc/self/fd/{fd}")
            root = str(volume.resolve())
            if resolved != root and not resolved.startswith(root.rstrip("/") + "/"):
                raise StartError(f"container {launch.name!r}: subPath of {mount_path} leaves "
                                 "its volume")
            _mount_point(target, stat.S_ISDIR(os.fstat(fd).st_mode))
            _bind_fd(fd, target)
        except OSError as error:
            raise StartError(f"container {launch.name!r}: cannot mount the subPath of "
                             f"{mount_path}: {error.strerror}") from None
        finally:
            os.close(fd)

    async def _create(self, launch: ContainerLaunch, image: str, pull: str,
                      sources: list[str]) -> None:
        """`create`, the container's env file readable by the agent only, in a directory of
        its own that is removed right after."""
        directory = Path(tempfile.mkdtemp(prefix="env-", dir=self._private_dir(launch)))
        try:
            path = directory / "env"
            command = create_command(self.name, launch, sources, pull=pull, env_file=str(path))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(command.env_file)
            code, _, err = await self._cli(*command.argv)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        if code != 0:
            raise StartError(f"image {image}: {self.name} create: {_first_line(err)}")

    async def _image_present(self, image: str) -> bool:
        args = ("image", "exists", "--", image) if self.name == "podman" else (
            "image", "inspect", "--", image)
        code, _, _ = await self._cli(*args)
        return code == 0

    async def _ensure_image(self, image: str, pull: str) -> None:
        """Load an absent image from Cyclone's archives (pulling stays the CLI's job)."""
        if image in self._present:
            return
        archive = image_archives(self.images_dir).get(image)
        if archive is None or pull == "always":
            return
        async with self._image_locks.setdefault(image, asyncio.Lock()):
            if image in self._present:
                return
            if not await self._image_present(image):
                code, _, err = await self._cli("load", "--input", str(archive))
                if code != 0:
                    raise StartError(
                        f"image {image}: cannot load {archive}: {_first_line(err)}")
            self._present.add(image)

    async def start(self, launch: ContainerLaunch) -> None:
        try:
            pull = pull_flag(launch.image_pull_policy, launch.image)
            image = qualified_image(launch.image)
            create_command(self.name, launch, [str(b.source) for b in launch.binds],
                           pull=pull, env_file="-")
        except ArgvError as error:
            raise StartError(f"container {launch.name!r}: {error}") from None
        sources, mounted = await asyncio.to_thread(self.bind_sources, launch)
        try:
            await self._create_and_start(launch, image, pull, sources)
        finally:
            await asyncio.to_thread(release_sources, mounted)

    async def _create_and_start(self, launch: ContainerLaunch, image: str, pull: str,
                                sources: list[str]) -> None:
        name = container_name(launch)
        existing = await self._inspect(name)
        if existing is None:
            await self._ensure_image(image, pull)
            await self._create(launch, image, pull, sources)
        elif progress_of(self.name, existing, datetime.now(UTC)) is not None:
            raise StartError(f"container {launch.name!r} was already launched")
        launch.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.name == "podman":
            state = str(((existing or {}).get("State") or {}).get("Status", "")).lower()
            if state != "initialized":
                await self._init_podman(launch)
        else:
            os.close(os.open(launch.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        code, _, err = await _to_the_end(self._cli("start", name, stdout=subprocess.DEVNULL))
        if code != 0:
            raise StartError(f"{self.name} start: {await self._start_error(launch, err)}")
        if self.name == "docker":
            await self._follow_logs(launch)

    async def _init_podman(self, launch: ContainerLaunch) -> None:
        """Create the container's process, stopped before it runs anything, with the log file
        as its output (conmon hands the CLI's stdout and stderr to it); the CLI prints the
        container's name there, so the file is emptied before the container starts."""
        output = os.open(launch.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
                         0o600)
        try:
            code, _, _ = await self._cli("init", container_name(launch), stdout=output,
                                         stderr=output)
            if code == 0:
                os.ftruncate(output, 0)
        finally:
            os.close(output)
        if code != 0:
            raise StartError(f"podman init: {await self._start_error(launch, b'')}")

    async def _start_error(self, launch: ContainerLaunch, err: bytes) -> str:
        inspected = await self._inspect(container_name(launch))
        error = ((inspected or {}).get("State") or {}).get("Error")
        if error:
            return str(error)
        if err:
            return _first_line(err)
        with contextlib.suppress(OSError):
            return _first_line(launch.log_path.read_bytes()[-4096:])
        return "no output"

    async def _follow_logs(self, launch: ContainerLaunch) -> None:
        """Copy a docker container's output into its log file, detached from the agent."""
        output = os.open(launch.log_path, os.O_WRONLY | os.O_APPEND)
        try:
            await asyncio.create_subprocess_exec(
                self.binary, "logs", "--follow", container_name(launch), env=self.env,
                stdin=subprocess.DEVNULL, stdout=output, stderr=output, cwd="/",
                start_new_session=True,
            )
        finally:
            os.close(output)

    async def wait(self, launch: ContainerLaunch) -> ContainerExited:
        name = container_name(launch)
        while True:
            inspected = await self._inspect(name)
            progress = progress_of(self.name, inspected, datetime.now(UTC))
            if isinstance(progress, ContainerExited):
                return progress
            if inspected is None:
                now = datetime.now(UTC)
                return ContainerExited(137, now, now, "", reason="ContainerCannotRun",
                                       message=f"the container {name} was removed")
            code, _, _ = await self._cli("wait", name, limit=None)
            if code != 0:
                await asyncio.sleep(0.5)

    async def stop(self, launch: ContainerLaunch, grace_seconds: float) -> None:
        """The image's stop signal (SIGTERM), SIGKILL after the grace period."""
        name = container_name(launch)
        try:
            progress = await self.inspect(launch)
        except StartError as error:
            log.warning("cannot stop %s: %s", name, error)
            return
        if isinstance(progress, ContainerExited) or progress is None:
            return
        code, _, err = await self._cli(*stop_command(name, grace_seconds),
                                       limit=grace_seconds + STOP_SLACK_SECONDS)
        if code != 0 and b"no such" not in err.lower():
            log.warning("%s stop %s: %s", self.name, name, _first_line(err))
        await self.wait(launch)

    def forget_pod(self, pod_uid: str) -> None:
        """Remove a pod's containers (in the background: the pod is gone already)."""
        task = asyncio.get_running_loop().create_task(self.remove_pod(pod_uid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def remove_pod(self, pod_uid: str) -> None:
        code, out, _ = await self._cli("ps", "--all", "--quiet", "--filter",
                                       f"label={LABEL_POD_UID}={pod_uid}")
        ids = out.decode().split()
        if code == 0 and ids:
            await self._cli("rm", "--force", *ids)
        if self.state_dir is not None:
            left = sorted((self.state_dir / "binds").glob(f"{pod_uid}-*"))
            await asyncio.to_thread(release_sources, left)


T = TypeVar("T")


async def _to_the_end(call: Coroutine[Any, Any, T]) -> T:
    """Await `call`; a cancelled caller still waits for it to end before it is cancelled.

    For a CLI call that must not be killed halfway: a `start` killed once the container's
    process runs leaves the engine's record of the container short of running, so the
    stop that follows the cancellation would see nothing to stop and skip the grace."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


def release_sources(mounted: list[Path]) -> None:
    """Take down the private mounts of `bind_sources` and remove their mount points."""
    for target in mounted:
        _unmount(target)
        with contextlib.suppress(OSError):
            (os.rmdir if target.is_dir() else os.unlink)(target)


def container_cli_runtime(engine: str, data_dir: Path | None,
                          images_dir: Path | None = None) -> ContainerCliRuntime:
    """A checked podman/docker runtime; podman keeps its state under `data_dir/<engine>`."""
    runtime = ContainerCliRuntime(
        engine, state_dir=data_dir / engine if data_dir is not None else None,
        images_dir=images_dir if images_dir is not None else default_images_dir(),
    )
    runtime.check()
    return runtime


def default_images_dir() -> Path | None:
    """`$CYCLONE_IMAGES_DIR`, else `dist/images` of a source checkout, when it exists."""
    configured = os.environ.get("CYCLONE_IMAGES_DIR")
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[3] / "dist" / "images"
    return checkout if checkout.is_dir() else None
