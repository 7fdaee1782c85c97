"""One pod on this node, from its first event to its finalized deletion.

The worker is level-based: whatever it starts with (a new pod, or a pod whose containers
already ran while no agent was watching), it inspects the runtime first and only starts
what never started, so running it again never runs a container twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.protocol import Cluster
from cyclone.node.env import ContainerConfigError, container_env, expand_all, run_as
from cyclone.node.layout import NodeLayout
from cyclone.node.object_cache import ReferencedObjects
from cyclone.node.runtimes.base import (
    ContainerExited,
    ContainerLaunch,
    Runtime,
    StartError,
)
from cyclone.node.status import (
    FAILED,
    SUCCEEDED,
    ContainerObservation,
    log_tail,
    pod_status,
    read_termination_message,
)
from cyclone.node.status_writer import PodStatusWriter
from cyclone.node.volumes import (
    container_mounts,
    prepare_sub_paths,
    resolve_pod_volumes,
    write_pod_volumes,
)

log = logging.getLogger(__name__)
CONFIG_RETRY_SECONDS = 2.0
DEFAULT_GRACE_SECONDS = 30


@dataclass
class NodeContext:
    cluster: Cluster
    layout: NodeLayout
    runtime: Runtime
    node_name: str
    host_ip: str = "127.0.0.1"
    workers: dict[str, PodWorker] = field(default_factory=dict)
    """Every pod worker of the node by pod uid."""
    objects: ReferencedObjects = field(init=False)
    """The Secrets and ConfigMaps the node's pods reference."""
    statuses: PodStatusWriter = field(init=False)
    """Writes the statuses of the node's pods."""

    def __post_init__(self) -> None:
        self.objects = ReferencedObjects(self.cluster)
        self.statuses = PodStatusWriter(self.cluster)


def is_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in (SUCCEEDED, FAILED)


def grace_seconds(pod: dict) -> float:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    value = meta.get("deletionGracePeriodSeconds")
    if value is None:
        value = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    return float(value)


class PodWorker:
    """Runs one pod under `restartPolicy: Never`; `OnFailure` and `Always` are treated the same
    (containers are not restarted)."""

    def __init__(self, node: NodeContext, pod: dict) -> None:
        self.node = node
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.name: str = pod["metadata"]["name"]
        self.namespace: str = pod["metadata"]["namespace"]
        self._changed = asyncio.Event()
        self._vanished = False
        self.published: dict | None = None
        """The status last written."""
        spec = pod.get("spec") or {}
        self.init_specs: list[dict] = list(spec.get("initContainers") or [])
        self.main_specs: list[dict] = list(spec.get("containers") or [])
        runtime = node.runtime
        self.init = [self._observation(c, runtime) for c in self.init_specs]
        self.main = [self._observation(c, runtime) for c in self.main_specs]
        self.launches: dict[str, ContainerLaunch] = {}
        self._termination_paths: dict[str, Path | None] = {}

    @staticmethod
    def _observation(container: dict, runtime: Runtime) -> ContainerObservation:
        image = container.get("image") or ""
        return ContainerObservation(container["name"], image, runtime.image_id(image))

    def update(self, pod: dict) -> None:
        self.pod = pod
        self._changed.set()

    def vanish(self) -> None:
        self._vanished = True
        self._changed.set()

    def container_active(self, name: str) -> bool:
        """Whether the container may still run (not exited, pod not being stopped)."""
        if self._vanished:
            return False
        for observation in [*self.init, *self.main]:
            if observation.name == name:
                return not observation.exited and not is_terminal(self.pod)
        return False

    @property
    def _stopping(self) -> bool:
        return self._vanished or bool(self.pod["metadata"].get("deletionTimestamp"))

    async def run(self) -> bool:
        """Run the pod until it is deleted, then stop its containers and clean up after it.

        A pod that has ended and whose end is in the cluster is left as it is instead
        (True): its containers have exited, so what is left to do waits for its deletion,
        and a worker started then for the ended pod does it (see `NodeAgent`)."""
        async with asyncio.TaskGroup() as group:
            lifecycle = group.create_task(self._run_pod_retrying())
            lifecycle.add_done_callback(lambda _: self._changed.set())
            while not self._stopping and not (lifecycle.done() and is_terminal(self.pod)):
                await self._changed.wait()
                self._changed.clear()
            lifecycle.cancel()
        if not self._stopping:
            return True
        await self._stop_containers(0.0 if self._vanished else grace_seconds(self.pod))
        observed = any(o.progress is not None for o in [*self.init, *self.main])
        if not self._vanished and observed and not is_terminal(self.pod):
            await self.node.statuses.flush(self)
        await asyncio.to_thread(shutil.rmtree, self.node.layout.pod_dir(self.uid), True)
        self._forget()
        if not self._vanished:
            with contextlib.suppress(NotFound):
                await self.node.cluster.delete(
                    kinds.POD, self.name, self.namespace, grace_period_seconds=0
                )
        return False

    async def _run_pod_retrying(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._run_pod()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod %s/%s: retrying in %.1fs", self.namespace, self.name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _run_pod(self) -> None:
        if is_terminal(self.pod):
            return
        await self._prepare()
        for spec, observation in zip(self.init_specs, self.init, strict=True):
            await self._run_container(spec, observation)
            if observation.failed:
                self._status_changed()
                return
        await self._start_containers()
        async with asyncio.TaskGroup() as group:
            for spec, observation in zip(self.main_specs, self.main, strict=True):
                group.create_task(self._run_container(spec, observation))
        self._status_changed()

    async def _prepare(self) -> None:
        """Build every container's launch; wait and retry while Secrets or keys are missing.

        What already ran (before an agent restart) is inspected first, so the status written
        never steps back to Pending.
        """
        for spec in [*self.init_specs, *self.main_specs]:
            observation = self._observation_of(spec["name"])
            progress = await self.node.runtime.inspect(self._launch_for_stop(spec["name"]))
            self._record(spec, observation, progress)
        if all(o.progress is None for o in [*self.init, *self.main]):
            self._status_changed()
        while True:
            try:
                await self._build_launches()
                return
            except ContainerConfigError as error:
                for observation in [*self.init, *self.main]:
                    if observation.progress is None:
                        observation.waiting_reason = "CreateContainerConfigError"
                        observation.waiting_message = str(error)
                self._status_changed()
            await asyncio.sleep(CONFIG_RETRY_SECONDS)

    async def _fetch_secret(self, namespace: str, name: str) -> dict:
        return await self.node.objects.get(kinds.SECRET, namespace, name, holder=self.uid)

    async def _fetch_config_map(self, namespace: str, name: str) -> dict:
        return await self.node.objects.get(kinds.CONFIG_MAP, namespace, name, holder=self.uid)

    async def _build_launches(self) -> None:
        layout = self.node.layout
        pod = copy.deepcopy(self.pod)
        pod.setdefault("status", {}).setdefault("podIP", self.node.host_ip)
        pod["status"].setdefault("hostIP", self.node.host_ip)
        volumes = await resolve_pod_volumes(
            pod, layout, fetch_secret=self._fetch_secret, fetch_config_map=self._fetch_config_map
        )
        owner = getattr(self.node.runtime, "volume_owner", None)
        await asyncio.to_thread(write_pod_volumes, volumes, owner)
        launches: dict[str, ContainerLaunch] = {}
        for spec in [*self.init_specs, *self.main_specs]:
            env = await container_env(
                pod, spec, fetch_secret=self._fetch_secret,
                fetch_config_map=self._fetch_config_map,
            )
            state_dir = layout.container_dir(self.uid, spec["name"])
            private_message = state_dir / "termination-log"
            mounts = container_mounts(spec, volumes, env, private_message)
            if mounts.termination_message_host_path == private_message:
                private_message.parent.mkdir(parents=True, exist_ok=True)
                private_message.touch()
                if owner is not None:
                    os.chown(private_message, *owner)
            await asyncio.to_thread(prepare_sub_paths, mounts, owner)
            user, group = run_as(pod, spec)
            launches[spec["name"]] = ContainerLaunch(
                pod_uid=self.uid,
                pod_name=self.name,
                namespace=self.namespace,
                name=spec["name"],
                image=spec.get("image") or "",
                command=expand_all(spec.get("command"), env),
                args=expand_all(spec.get("args"), env),
                env=env,
                working_dir=spec.get("workingDir") or None,
                binds=mounts.binds,
                state_dir=state_dir,
                log_path=layout.log_path(self.namespace, self.name, spec["name"]),
                annotations=dict(self.pod["metadata"].get("annotations") or {}),
                run_as_user=user,
                run_as_group=group,
                node_dir=layout.data_dir,
                image_pull_policy=spec.get("imagePullPolicy") or None,
            )
            self._termination_paths[spec["name"]] = mounts.termination_message_host_path
        self.launches = launches
        for spec in [*self.init_specs, *self.main_specs]:
            observation = self._observation_of(spec["name"])
            observation.waiting_reason = observation.waiting_message = None
            self._record(spec, observation, observation.progress)

    def _record(self, spec: dict, observation: ContainerObservation, progress: object) -> None:
        """Take what the runtime reports; an exited container's message is read at once."""
        observation.progress = progress  # type: ignore[assignment]
        if isinstance(progress, ContainerExited):
            observation.termination_message = self._termination_message(spec, observation)

    async def _start(self, spec: dict, observation: ContainerObservation) -> None:
        launch = self.launches[spec["name"]]
        self._record(spec, observation, await self.node.runtime.inspect(launch))
        if observation.progress is not None:
            return
        try:
            await self.node.runtime.start(launch)
        except StartError as error:
            now = datetime.now(UTC)
            failed = ContainerExited(128, now, now, "", reason="StartError", message=str(error))
            self._record(spec, observation, failed)
            return
        self._record(spec, observation, await self.node.runtime.inspect(launch))

    async def _start_containers(self) -> None:
        for spec, observation in zip(self.main_specs, self.main, strict=True):
            await self._start(spec, observation)
        self._status_changed()

    async def _run_container(self, spec: dict, observation: ContainerObservation) -> None:
        if not isinstance(observation.progress, ContainerExited):
            await self._start(spec, observation)
        if not isinstance(observation.progress, ContainerExited):
            self._status_changed()
            exited = await self.node.runtime.wait(self.launches[spec["name"]])
            self._record(spec, observation, exited)
        self._status_changed()

    def _termination_message(self, spec: dict, observation: ContainerObservation) -> str | None:
        path = self._termination_paths.get(spec["name"])
        message = read_termination_message(path) if path is not None else None
        fallback = spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        if message is None and fallback and observation.failed:
            message = log_tail(self.node.layout.log_path(self.namespace, self.name, spec["name"]))
        return message

    def _observation_of(self, name: str) -> ContainerObservation:
        return next(o for o in [*self.init, *self.main] if o.name == name)

    def _status_changed(self) -> None:
        """Have the node's status writer write the pod's status (see `status_writer.py`)."""
        self.node.statuses.mark(self)

    def current_status(self) -> dict:
        return pod_status(
            self.pod, self.init, self.main, host_ip=self.node.host_ip, now=datetime.now(UTC)
        )

    def written(self, status: dict, updated: dict) -> None:
        self.published = status
        if updated["metadata"].get("uid") == self.uid:
            self.update(updated)

    def _launch_for_stop(self, name: str) -> ContainerLaunch:
        if name in self.launches:
            return self.launches[name]
        layout = self.node.layout
        return ContainerLaunch(
            self.uid, self.name, self.namespace, name, "", [], [], {}, None, [],
            layout.container_dir(self.uid, name), layout.log_path(self.namespace, self.name, name),
        )

    async def _stop_containers(self, grace: float) -> None:
        names = [c["name"] for c in [*self.init_specs, *self.main_specs]]
        async with asyncio.TaskGroup() as group:
            for name in names:
                group.create_task(self.node.runtime.stop(self._launch_for_stop(name), grace))
        for spec in [*self.init_specs, *self.main_specs]:
            progress = await self.node.runtime.inspect(self._launch_for_stop(spec["name"]))
            if progress is not None:
                self._record(spec, self._observation_of(spec["name"]), progress)

    def _forget(self) -> None:
        """Remove the pod's logs, unless a new pod of the same name already runs here."""
        successor = any(
            (w.namespace, w.name) == (self.namespace, self.name) and w.uid != self.uid
            for w in self.node.workers.values()
        )
        if not successor:
            shutil.rmtree(
                self.node.layout.pod_logs_dir(self.namespace, self.name), ignore_errors=True
            )
        forget = getattr(self.node.runtime, "forget_pod", None)
        if forget is not None:
            forget(self.uid)
