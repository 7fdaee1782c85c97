"""What the crash tests are built from: the engine as a process that is SIGKILLed and
started again at once, crash points it kills itself at, and records of what reached the
cluster (every pod created) and the outside world (every POST, with the kills between).

A side effect is done exactly once when the records show it once. Outbound HTTP is the
exception the engine cannot close: a kill between a POST and the status write that records
it makes the restarted engine send it again, with the same ``X-Cyclone-Delivery`` id. So a
repeated delivery is accepted only when a kill fell between the two POSTs, and not when
that kill is a crash point placed after the record was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cyclone.api import keys
from cyclone.engine.core.podbuilder import ANNOTATION_ATTEMPT
from cyclone.kube import kinds
from cyclone.kube.errors import Gone
from cyclone.kube.protocol import Cluster

ENGINE_SCRIPT = Path(__file__).with_name("engine_process.py")
TERMINAL = ("Succeeded", "Failed", "Cancelled")


@dataclass
class CrashPoint:
    """Kill the engine right after its first write matching these (see engine_process)."""

    label: str
    verb: str
    kind: str
    name: str = "*"
    contains: str = ""
    then: Callable[[], Awaitable[None]] | None = None
    """Run after the kill and before the next engine starts."""
    recorded: tuple[tuple, ...] = ()
    """The deliveries (keys) whose record this point follows: its kill explains no repeat
    of them."""
    hit: asyncio.Event = field(default_factory=asyncio.Event)

    def spec(self) -> dict:
        return {"verb": self.verb, "kind": self.kind, "name": self.name,
                "contains": self.contains}


@dataclass(frozen=True)
class Kill:
    label: str
    point: CrashPoint | None = None


@dataclass(frozen=True)
class Post:
    key: tuple
    delivery: str | None


class Engines:
    """The engine in a process of its own, started again each time it dies; every death
    is a `Kill` in `timeline`, in order with the `Post`s the test's receivers append."""

    def __init__(self, target: Path, logs: Path, config: dict,
                 points: list[CrashPoint], timeline: list,
                 random_writes: Sequence[int] = ()) -> None:
        self.target = target
        self.logs = logs
        self.config = config
        self.points = list(points)
        self.random_writes = list(random_writes)
        """Kill after this many writes of the next engines, one count per engine."""
        self.timeline = timeline
        self.generation = 0
        self.deaths: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._spawned: list[CrashPoint] = []
        self._spawned_writes: int | None = None
        self._kill_label: str | None = None
        self._lock = asyncio.Lock()
        self._started = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self._closing = False

    async def _spawn(self) -> None:
        self._spawned = list(self.points)
        self._spawned_writes = self.random_writes[0] if self.random_writes else None
        self.generation += 1
        writes = [] if self._spawned_writes is None else [
            "--crash-after-writes", str(self._spawned_writes)]
        log = os.open(self.logs / f"engine-{self.generation}.log",
                      os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, str(ENGINE_SCRIPT), str(self.target),
                "--config", json.dumps(self.config),
                "--crash-after", json.dumps([p.spec() for p in self._spawned]), *writes,
                stdout=asyncio.subprocess.PIPE, stderr=log,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            )
        finally:
            os.close(log)
        async with self._started:
            self._started.notify_all()

    async def _supervise(self) -> None:
        try:
            await self._restart_after_each_death()
        finally:
            async with self._started:
                self._started.notify_all()

    async def _restart_after_each_death(self) -> None:
        while True:
            proc = self._proc
            assert proc is not None and proc.stdout is not None
            out = await proc.stdout.read()
            await proc.wait()
            if self._closing:
                return
            hits = [line.split()[1] for line in out.decode().splitlines()
                    if line.startswith("crash ")]
            point = self._spawned[int(hits[0])] if hits and hits[0].isdigit() else None
            label = point.label if point else self._kill_label
            if hits and hits[0] == "writes":
                label = f"random: after {self._spawned_writes} writes"
                if self.random_writes:
                    self.random_writes.pop(0)
            if label is None:
                label = f"unexpected exit {proc.returncode}"
                self.deaths.append(label)
            self._kill_label = None
            self.timeline.append(Kill(label, point))
            if point is not None:
                self.points.remove(point)
                if point.then is not None:
                    await point.then()
                point.hit.set()
            await self._spawn()

    async def __aenter__(self) -> Engines:
        await self._spawn()
        self._task = asyncio.create_task(self._supervise())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGKILL)
            await self._proc.wait()
        if self._task is not None:
            if self._task.done():
                self._task.result()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def kill(self, label: str) -> None:
        """SIGKILL the running engine; returns once the next one has been started."""
        async with self._lock:
            generation = self.generation
            proc = self._proc
            assert proc is not None
            if proc.returncode is None:
                self._kill_label = label
                proc.send_signal(signal.SIGKILL)
            async with self._started:
                await self._started.wait_for(
                    lambda: self.generation > generation or self._supervisor_ended())
            if self._supervisor_ended():
                self._task.result()

    async def end_random_kills(self) -> None:
        """No random kill from now on: the running engine, which may have one to come, is
        replaced by one without."""
        if self.random_writes:
            self.random_writes.clear()
            await self.kill("random kills end")

    def _supervisor_ended(self) -> bool:
        return self._task is not None and self._task.done()

    def unreached(self) -> list[str]:
        return [p.label for p in self.points]


def engine_target(env) -> Path:
    """What the engine process opens: the env's cluster file, or the plane's kubeconfig."""
    if env.backend == "kube":
        from support.kube_engine import engine_plane

        return Path(engine_plane().kubeconfig)
    return env.data_dir / "cluster.db"


def note_post(timeline: list, key: tuple, delivery: str | None, sender_gone: bool) -> None:
    """Append a POST; one whose sender had died before it was read was sent before the
    last kill recorded, so it goes in front of that kill."""
    post = Post(key, delivery)
    if sender_gone:
        for index in range(len(timeline) - 1, -1, -1):
            if isinstance(timeline[index], Kill):
                timeline.insert(index, post)
                return
    timeline.append(post)


def unexplained_repeats(timeline: list) -> list[str]:
    """Every POST of a delivery after its first that no kill explains: a kill must fall
    between the two, and not one placed after that delivery's record was written."""
    explained: dict[tuple, bool] = {}
    seen: dict[tuple, int] = defaultdict(int)
    problems = []
    for entry in timeline:
        if isinstance(entry, Kill):
            for key in explained:
                if entry.point is None or key not in entry.point.recorded:
                    explained[key] = True
            continue
        seen[entry.key] += 1
        if seen[entry.key] > 1 and not explained.get(entry.key):
            problems.append(f"{entry.key} POSTed again (#{seen[entry.key]}) with no crash "
                            "between sending and recording it")
        explained[entry.key] = False
    return problems


@dataclass
class Ledger:
    """Every pod created in a namespace (ADDED, by name and uid, with its creation's
    resourceVersion) and the resourceVersion at which each run first showed a terminal
    phase, from watches that started before the work."""

    pods: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    pod_labels: dict[str, dict] = field(default_factory=dict)
    pod_attempts: dict[str, str] = field(default_factory=dict)
    ended_at: dict[str, int] = field(default_factory=dict)

    def stage_pods(self, run: str, stage: str) -> dict[str, dict[str, int]]:
        return {name: uids for name, uids in self.pods.items()
                if self.pod_labels[name].get(keys.LABEL_WORKFLOWRUN) == run
                and self.pod_labels[name].get(keys.LABEL_STAGE) == stage
                and self.pod_labels[name].get(keys.LABEL_POD_KIND) == keys.POD_KIND_WORKLOAD}

    def attempts(self, run: str, stage: str) -> list[str]:
        """The attempt of each stage pod created for `run`'s `stage`, sorted."""
        return sorted(self.pod_attempts[name] for name in self.stage_pods(run, stage))

    def created_after_end(self, run: str) -> list[str]:
        """Stage pods of `run` created after it was seen ending."""
        end = self.ended_at.get(run)
        return [name for name, uids in self.pods.items() if end is not None
                and self.pod_labels[name].get(keys.LABEL_WORKFLOWRUN) == run
                and self.pod_labels[name].get(keys.LABEL_POD_KIND) == keys.POD_KIND_WORKLOAD
                and any(version > end for version in uids.values())]

    def _pod(self, event_type: str, pod: dict) -> None:
        meta = pod["metadata"]
        if event_type == "ADDED":
            self.pods[meta["name"]].setdefault(meta["uid"], int(meta["resourceVersion"]))
            self.pod_labels[meta["name"]] = meta.get("labels") or {}
            self.pod_attempts[meta["name"]] = (meta.get("annotations") or {}).get(
                ANNOTATION_ATTEMPT, "")

    def _run(self, event_type: str, run: dict) -> None:
        meta = run["metadata"]
        phase = ((run.get("status") or {}).get("overall") or {}).get("phase")
        if phase in TERMINAL:
            self.ended_at.setdefault(meta["name"], int(meta["resourceVersion"]))

    @contextlib.asynccontextmanager
    async def following(self, cluster: Cluster, namespace: str):
        """Record from now (the namespace must have no pods or runs yet) until the end."""
        tasks = []
        for kind, handler in ((kinds.POD, self._pod), (kinds.WORKFLOW_RUN, self._run)):
            listed = await cluster.list(kind, namespace)
            assert not listed.items, f"{kind.kind}s exist before the ledger starts"
            tasks.append(asyncio.create_task(
                _watch(cluster, kind, namespace, listed.resource_version, handler)))
        try:
            yield self
        finally:
            for task in tasks:
                if task.done():
                    task.result()
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _watch(cluster: Cluster, kind: kinds.Kind, namespace: str, version: str,
                 handler: Callable[[str, dict], None]) -> None:
    while True:
        try:
            async for event in cluster.watch(kind, namespace, resource_version=version):
                if event.type == "BOOKMARK":
                    version = event.object["metadata"]["resourceVersion"]
                    continue
                version = event.object["metadata"]["resourceVersion"]
                handler(event.type, event.object)
        except Gone as exc:
            raise AssertionError(f"the {kind.kind} watch lost events: {exc}") from exc
