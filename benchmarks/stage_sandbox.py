"""The sandbox a Cyclone stage container runs in on the host runtime (`cyclone up`), as a
command line: the floor of the DAG benchmarks runs each recipe in exactly this sandbox.

`HostRuntime.argv` builds it as for a stage pod's workload container: a read-only view of
the host with its workspace and results volumes bound in and the agent's data hidden
(bubblewrap as root), the privilege drop, and a second bubblewrap isolating the command
in its own user, pid, ipc and uts namespaces (one bubblewrap when not run as root).
"""

from __future__ import annotations

import os
from pathlib import Path

from cyclone.node.runtimes.base import ContainerLaunch
from cyclone.node.runtimes.host import NOBODY, HostRuntime
from cyclone.node.volumes import Bind


def stage_sandbox_argv(workdir: Path, command: list[str] | None = None) -> list[str]:
    """`command` (default `/bin/true`) in a stage container's sandbox; its volumes are
    directories under `workdir`, owned by the sandbox's user as the agent makes them."""
    volumes = {"workspace": "/workspace", "results": "/cyclone/results"}
    for name in [*volumes, "state"]:
        (workdir / name).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0 and name != "state":
            os.chown(workdir / name, NOBODY, NOBODY)
    launch = ContainerLaunch(
        pod_uid="floor", pod_name="floor", namespace="bench", name="main", image="busybox",
        command=command or ["/bin/true"], args=[], env={}, working_dir=None,
        binds=[Bind(workdir / name, target) for name, target in volumes.items()],
        state_dir=workdir / "state", log_path=workdir / "state" / "log",
        node_dir=workdir / "state",
    )
    return HostRuntime(hidden_paths=[workdir / "state"]).argv(launch)

