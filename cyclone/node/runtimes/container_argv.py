"""What the podman/docker runtime asks its CLI, as pure functions of a container's launch.

Each container of a pod becomes one named container of the engine: its name and labels are
derived from the pod's uid and the container's name, so a restarted agent finds it again
without any state of its own. The pod's volumes are bind-mounted at their mount paths, the
command replaces the image's entrypoint (and drops its cmd), args replace the cmd, as in
Kubernetes. Every container of a pod uses the host's network namespace (the pod IP the agent
reports is the host's, as under the host runtime), so the containers of one pod share it;
podman gives each the pod's name as its host name (docker refuses one with the host's
network), and `HOSTNAME` is the pod's name under both.

Isolation: every container drops all capabilities, cannot gain privileges (setuid binaries,
file capabilities), has a pids limit, and runs as the pod's `runAsUser` or else as nobody
(65534); root is refused. A container's environment goes to the engine in an env file, never
in the CLI's own environment (the loader and the CLI read variables such as `LD_PRELOAD`), and
the image is the first word after `--`, so it can never be read as a flag.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cyclone.node.runtimes.base import (
    ContainerExited,
    ContainerLaunch,
    ContainerProgress,
    ContainerRunning,
)

ENGINES = ("podman", "docker")
LABEL_POD_UID = "dev.cyclone.pod-uid"
LABEL_CONTAINER = "dev.cyclone.container"
LABEL_POD = "dev.cyclone.pod"
PULL_FLAGS = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}
NOBODY = 65534
"""The user and group of a container whose pod names none."""
PIDS_LIMIT = 4096
ISOLATION = ("--cap-drop", "all", "--security-opt", "no-new-privileges",
             "--pids-limit", str(PIDS_LIMIT))
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?/)?"
    rf"{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
"""The reference grammar of the distribution spec: [domain[:port]/]path[:tag][@digest]."""
RUNNING_STATES = frozenset({"running", "paused", "stopping"})
NOT_STARTED_STATES = frozenset({"created", "configured", "initialized"})


class ArgvError(ValueError):
    """A launch the CLI cannot express (the message names the field)."""


def container_name(launch: ContainerLaunch) -> str:
    """The engine's name of a pod's container: unique per pod uid and container name."""
    return f"cyclone-{launch.pod_uid}-{launch.name}"


def qualified_image(image: str) -> str:
    """An image reference as Kubernetes reads it: `alpine:3` → `docker.io/library/alpine:3`,
    `cyclone/toolbox:1` → `docker.io/cyclone/toolbox:1`; a registry host is kept."""
    if not image:
        raise ArgvError("image: must not be empty")
    if len(image) > 4096 or not IMAGE_REFERENCE.fullmatch(image):
        raise ArgvError(f"image: {image[:200]!r} is not an image reference")
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return image
    if not slash:
        image = f"library/{image}"
    return f"docker.io/{image}"


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when it has none or only a digest)."""
    if "@" in image:
        return None
    last = image.rpartition("/")[2]
    return last.partition(":")[2] or None


def pull_flag(policy: str | None, image: str) -> str:
    """`--pull` of the CLI for a Kubernetes `imagePullPolicy` (its default when unset:
    Always for `:latest` or no tag, else IfNotPresent)."""
    if not policy:
        tag = image_tag(image)
        policy = "Always" if tag in (None, "latest") and "@" not in image else "IfNotPresent"
    try:
        return PULL_FLAGS[policy]
    except KeyError:
        raise ArgvError(f"imagePullPolicy: {policy!r} is not Always, IfNotPresent or Never"
                        ) from None


@dataclass(frozen=True)
class CreateCommand:
    """A `create` command line and the env file it names.

    Environment values appear neither on the command line (others can read it in /proc) nor
    in the CLI's environment: `env_file` is the text of the file given as `--env-file`, one
    `NAME=VALUE` a line."""

    argv: list[str]
    env_file: str


def env_file_text(env: dict[str, str]) -> str:
    """The env file of a container; a variable the format cannot carry is refused by name."""
    lines = []
    for name, value in env.items():
        if (not name or "=" in name or name[0] in "# \t"
                or any(c < " " or c == "\x7f" for c in name)):
            raise ArgvError(f"env: {name[:100]!r} is not a valid variable name")
        if "\n" in value or "\r" in value or "\0" in value:
            raise ArgvError(f"env {name}: a value with a line break cannot be passed to a "
                            "container of this runtime (mount it from a Secret volume)")
        lines.append(f"{name}={value}\n")
    return "".join(lines)


def user_option(run_as_user: int | None, run_as_group: int | None) -> str:
    """`--user` of a container: the pod's uid and gid, nobody for what it leaves unset."""
    for field_name, value in (("runAsUser", run_as_user), ("runAsGroup", run_as_group)):
        if value == 0:
            raise ArgvError(f"{field_name}: 0 (root) is not allowed under this runtime")
    user = NOBODY if run_as_user is None else run_as_user
    group = NOBODY if run_as_group is None else run_as_group
    return f"{user}:{group}"


def entrypoint_and_args(command: list[str], args: list[str]) -> tuple[str | None, list[str]]:
    """`--entrypoint` and the arguments after the image: a command's first word replaces the
    image's entrypoint and the rest, with args, its cmd."""
    if command:
        return command[0], [*command[1:], *args]
    return None, list(args)


def bind_option(source: str, target: str, read_only: bool) -> str:
    for field_name, value in (("volume source", source), ("mountPath", target)):
        if ":" in value or "," in value:
            raise ArgvError(f"{field_name} {value!r}: a path with ':' or ',' cannot be"
                            " bind-mounted through the container CLI")
    if not posixpath.isabs(target):
        raise ArgvError(f"mountPath {target!r} must be absolute")
    return f"{source}:{target}:{'ro' if read_only else 'rw'}"


def create_command(
    engine: str,
    launch: ContainerLaunch,
    sources: list[str],
    *,
    pull: str,
    env_file: str,
    extra: tuple[str, ...] = (),
) -> CreateCommand:
    """The `create` command of a launch; `sources[i]` is the host path bound for
    `launch.binds[i]`, `env_file` where the runtime writes `CreateCommand.env_file`."""
    if engine not in ENGINES:
        raise ArgvError(f"runtime {engine!r}: choose podman or docker")
    argv = [
        "create", "--name", container_name(launch),
        "--label", f"{LABEL_POD_UID}={launch.pod_uid}",
        "--label", f"{LABEL_CONTAINER}={launch.name}",
        "--label", f"{LABEL_POD}={launch.namespace}/{launch.pod_name}",
        "--network", "host", "--pull", pull, *ISOLATION,
        "--user", user_option(launch.run_as_user, launch.run_as_group),
        "--env-file", env_file,
    ]
    hostname = launch.pod_name[:63].rstrip("-.")
    if hostname and engine == "podman":
        argv += ["--hostname", hostname]
    env = env_file_text({"HOSTNAME": hostname or "pod", **launch.env})
    if launch.working_dir:
        argv += ["--workdir", launch.working_dir]
    if len(sources) != len(launch.binds):
        raise ArgvError("one source per bind is needed")
    for bind, source in zip(launch.binds, sources, strict=True):
        argv += ["--volume", bind_option(source, bind.target, bind.read_only)]
    entrypoint, arguments = entrypoint_and_args(launch.command, launch.args)
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    argv += [*extra, "--", qualified_image(launch.image), *arguments]
    return CreateCommand(argv, env)


def stop_command(name: str, grace_seconds: float) -> list[str]:
    """SIGTERM (the image's stop signal), SIGKILL after the grace period (whole seconds,
    rounded up); no grace: SIGKILL at once."""
    if grace_seconds <= 0:
        return ["kill", "--signal", "KILL", name]
    return ["stop", "--time", str(int(-(-grace_seconds // 1))), name]


def _time(value: object) -> datetime | None:
    """A time of `inspect` (RFC 3339 with nanoseconds); None for the zero time."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def progress_of(engine: str, inspected: dict | None, now: datetime) -> ContainerProgress:
    """How a container is doing, from the engine's `inspect` document (None: no container)."""
    if inspected is None:
        return None
    state = inspected.get("State") or {}
    status = str(state.get("Status") or "").lower()
    container_id = f"{engine}://{inspected.get('Id', '')}"
    started = _time(state.get("StartedAt"))
    error = state.get("Error") or None
    if status in NOT_STARTED_STATES and started is None:
        if error:
            return ContainerExited(128, now, now, container_id, reason="StartError",
                                   message=str(error))
        return None
    if status in RUNNING_STATES:
        return ContainerRunning(started or now, container_id)
    finished = _time(state.get("FinishedAt")) or now
    return ContainerExited(
        int(state.get("ExitCode") or 0), started or finished, finished, container_id,
        reason="OOMKilled" if state.get("OOMKilled") else None,
    )
