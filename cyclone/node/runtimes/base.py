"""The runtime protocol: how the agent starts, inspects, waits for and stops a container."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cyclone.node.volumes import Bind


@dataclass
class ContainerLaunch:
    """Everything a runtime needs to run one container of a pod.

    `state_dir` is a per-container directory owned by the runtime: what it writes there
    must be enough to find the container again after the agent restarts.
    """

    pod_uid: str
    pod_name: str
    namespace: str
    name: str
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    working_dir: str | None
    binds: list[Bind]
    state_dir: Path
    log_path: Path
    annotations: dict[str, str] = field(default_factory=dict)
    run_as_user: int | None = None
    """`securityContext.runAsUser` of the container (else of the pod); None: the default."""
    run_as_group: int | None = None
    node_dir: Path | None = None
    """The node's data directory (every pod's volumes, logs and state): never visible to a
    container."""
    image_pull_policy: str | None = None
    """`imagePullPolicy` of the container (None: Kubernetes' default for its image)."""


@dataclass
class ContainerRunning:
    started_at: datetime
    container_id: str


@dataclass
class ContainerExited:
    exit_code: int
    started_at: datetime
    finished_at: datetime
    container_id: str
    reason: str | None = None
    """Overrides the reason derived from the exit code (`StartError`, …)."""
    message: str | None = None


ContainerProgress = ContainerRunning | ContainerExited | None
"""None: the container was never started on this node."""


class StartError(Exception):
    """The runtime could not start a container (its `reason` goes to the status)."""


class Runtime(Protocol):
    name: str

    async def start(self, launch: ContainerLaunch) -> None:
        """Start a container that `inspect` reports as never started."""
        ...

    async def inspect(self, launch: ContainerLaunch) -> ContainerProgress: ...

    async def wait(self, launch: ContainerLaunch) -> ContainerExited:
        """Wait until a started container has exited."""
        ...

    async def stop(self, launch: ContainerLaunch, grace_seconds: float) -> None:
        """SIGTERM the container, SIGKILL it after the grace period; return once it is gone."""
        ...

    def image_id(self, image: str) -> str: ...
