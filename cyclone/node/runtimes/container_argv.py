"""What the podman/docker runtime asks its CLI, as pure functions of a container's launch.

Each container of a pod becomes one named container of the engine: its name and labels are
derived from the pod's uid and the container's name, so a restarted agent finds it again
without any state of its own. The pod's volumes are bind-mounted at their mount paths, the
command replaces the image's entrypoint (and drops its cmd), args replace the cmd, as in
Kubernetes. Every container of a pod uses the host's network namespace (the pod IP the agent
reports is the host's, as under the host runtime), so the containers of one pod share it;
podman gives each the pod's name as its host name (docker refuses one with the host's
network), and `HOSTNAME` is the pod's name under both.
"""

from __future__ import annotations

import posixpath
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
CLI_ENV_NAMES = frozenset({"PATH", "HOME", "TMPDIR", "USER", "LANG", "LC_ALL", "SHELL"})
"""Variables the CLI itself reads: a container's value for one of them is given inline."""
CLI_ENV_PREFIXES = ("CONTAINERS_", "DOCKER_", "XDG_", "REGISTRY_", "BUILDAH_", "PODMAN_")
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


def _inline(name: str) -> bool:
    return name in CLI_ENV_NAMES or name.startswith(CLI_ENV_PREFIXES)


@dataclass(frozen=True)
class CreateCommand:
    """A `create` command line and the environment its CLI must run with.

    Environment values never appear on the command line (others can read it in /proc):
    each is named with `--env NAME` and passed through `env`, except the few variables the
    CLI reads itself, which go inline."""

    argv: list[str]
    env: dict[str, str]


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
    extra: tuple[str, ...] = (),
) -> CreateCommand:
    """The `create` command of a launch; `sources[i]` is the host path bound for
    `launch.binds[i]` (a subPath already resolved inside its volume)."""
    if engine not in ENGINES:
        raise ArgvError(f"runtime {engine!r}: choose podman or docker")
    argv = [
        "create", "--name", container_name(launch),
        "--label", f"{LABEL_POD_UID}={launch.pod_uid}",
        "--label", f"{LABEL_CONTAINER}={launch.name}",
        "--label", f"{LABEL_POD}={launch.namespace}/{launch.pod_name}",
        "--network", "host", "--pull", pull,
    ]
    hostname = launch.pod_name[:63].rstrip("-.")
    if hostname and engine == "podman":
        argv += ["--hostname", hostname]
    env = {"HOSTNAME": hostname or "pod", **launch.env}
    passed: dict[str, str] = {}
    for name, value in env.items():
        if not name or "=" in name:
            raise ArgvError(f"env: {name!r} is not a valid variable name")
        if _inline(name):
            argv += ["--env", f"{name}={value}"]
        else:
            argv += ["--env", name]
            passed[name] = value
    if launch.working_dir:
        argv += ["--workdir", launch.working_dir]
    if launch.run_as_user is not None:
        user = str(launch.run_as_user)
        if launch.run_as_group is not None:
            user += f":{launch.run_as_group}"
        argv += ["--user", user]
    if len(sources) != len(launch.binds):
        raise ArgvError("one source per bind is needed")
    for bind, source in zip(launch.binds, sources, strict=True):
        argv += ["--volume", bind_option(source, bind.target, bind.read_only)]
    entrypoint, arguments = entrypoint_and_args(launch.command, launch.args)
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    argv += [*extra, qualified_image(launch.image), *arguments]
    return CreateCommand(argv, passed)


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
