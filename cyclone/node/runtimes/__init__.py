"""Container runtimes of the node agent: `host` (bubblewrap) and `fake`."""

from cyclone.node.runtimes.base import (
    ContainerExited,
    ContainerLaunch,
    ContainerProgress,
    ContainerRunning,
    Runtime,
    StartError,
)
from cyclone.node.runtimes.fake import FakeRuntime
from cyclone.node.runtimes.host import HostRuntime

__all__ = [
    "ContainerExited",
    "ContainerLaunch",
    "ContainerProgress",
    "ContainerRunning",
    "FakeRuntime",
    "HostRuntime",
    "Runtime",
    "StartError",
]
