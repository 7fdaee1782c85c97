"""Container runtimes of the node agent: `host` (bubblewrap), `fake`, and `podman`/`docker`
(`ContainerCliRuntime`: each container from its image, through the engine's CLI)."""

from cyclone.node.runtimes.base import (
    ContainerExited,
    ContainerLaunch,
    ContainerProgress,
    ContainerRunning,
    Runtime,
    StartError,
)
from cyclone.node.runtimes.container_cli import ContainerCliRuntime
from cyclone.node.runtimes.fake import FakeRuntime
from cyclone.node.runtimes.host import HostRuntime

__all__ = [
    "ContainerCliRuntime",
    "ContainerExited",
    "ContainerLaunch",
    "ContainerProgress",
    "ContainerRunning",
    "FakeRuntime",
    "HostRuntime",
    "Runtime",
    "StartError",
]
