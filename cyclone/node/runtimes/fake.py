"""The fake runtime: containers complete after a delay with a chosen exit code, running nothing.

Like kwok, it lets the whole system be exercised at scale. A pod can choose its outcome with
the annotations `fake.cyclone.dev/exit-code` and `fake.cyclone.dev/duration-seconds`, or per
container with `…/exit-code.<container>` and `…/duration-seconds.<container>`.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cyclone.node.runtimes.base import (
    ContainerExited,
    ContainerLaunch,
    ContainerProgress,
    ContainerRunning,
)

EXIT_CODE_ANNOTATION = "fake.cyclone.dev/exit-code"
DURATION_ANNOTATION = "fake.cyclone.dev/duration-seconds"


@dataclass
class _FakeContainer:
    started_at: datetime
    finishes_at: datetime
    exit_code: int
    stopped: ContainerExited | None = None


class FakeRuntime:
    name = "fake"

    def __init__(self, *, exit_code: int = 0, duration_seconds: float = 0.0) -> None:
        self.exit_code = exit_code
        self.duration_seconds = duration_seconds
        self._containers: dict[tuple[str, str], _FakeContainer] = {}

    def image_id(self, image: str) -> str:
        return f"fake://{image}"

    @staticmethod
    def container_id(launch: ContainerLaunch) -> str:
        digest = hashlib.sha256(f"{launch.pod_uid}/{launch.name}".encode()).hexdigest()
        return f"fake://{digest[:40]}"

    def _choice(self, launch: ContainerLaunch, annotation: str, default: float) -> float:
        values = launch.annotations
        raw = values.get(f"{annotation}.{launch.name}", values.get(annotation))
        try:
            return float(raw) if raw is not None else default
        except ValueError:
            return default

    async def start(self, launch: ContainerLaunch) -> None:
        now = datetime.now(UTC)
        duration = self._choice(launch, DURATION_ANNOTATION, self.duration_seconds)
        exit_code = int(self._choice(launch, EXIT_CODE_ANNOTATION, self.exit_code))
        self._containers[(launch.pod_uid, launch.name)] = _FakeContainer(
            now, now + timedelta(seconds=duration), exit_code
        )
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        launch.log_path.write_text(
            f"fake runtime: container {launch.name} ({launch.image}) exits with {exit_code}"
            f" after {duration:g}s\n"
        )

    async def inspect(self, launch: ContainerLaunch) -> ContainerProgress:
        container = self._containers.get((launch.pod_uid, launch.name))
        if container is None:
            return None
        if container.stopped is not None:
            return container.stopped
        if datetime.now(UTC) < container.finishes_at:
            return ContainerRunning(container.started_at, self.container_id(launch))
        return ContainerExited(
            container.exit_code, container.started_at, container.finishes_at,
            self.container_id(launch),
        )

    async def wait(self, launch: ContainerLaunch) -> ContainerExited:
        while True:
            progress = await self.inspect(launch)
            if isinstance(progress, ContainerExited):
                return progress
            container = self._containers[(launch.pod_uid, launch.name)]
            remaining = (container.finishes_at - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(min(max(remaining, 0.001), 0.5))

    async def stop(self, launch: ContainerLaunch, grace_seconds: float) -> None:
        container = self._containers.get((launch.pod_uid, launch.name))
        if container is None or container.stopped is not None:
            return
        if datetime.now(UTC) < container.finishes_at:
            container.stopped = ContainerExited(
                137, container.started_at, datetime.now(UTC), self.container_id(launch)
            )

    def forget_pod(self, pod_uid: str) -> None:
        for key in [k for k in self._containers if k[0] == pod_uid]:
            del self._containers[key]
