"""`Engine`: the informers and controllers of the workflow engine, run as one unit.

The control cluster holds the Cyclone objects and is registered as the execution cluster
``cyclone-control-cluster``; every execution cluster gets its own pod informer and pod
controller (`add_cluster`), and an `ExecutionClusterRegistry` adds and removes the clusters
the ExecutionCluster objects describe. Controllers start once the control cluster's caches
have synced and the ExecutionClusters present at start are connected, so no reconcile acts
on a half-filled cache; a worker cluster that does not answer never holds up the others.

Given a `ShardWork` (`cyclone engine --shards N`), every controller reconciles only the
keys of namespaces in the shards this replica holds, each reconcile cancelled when its
shard is lost, and a shard taken over has all its keys queued again; the ExecutionCluster
statuses, the one cluster-wide duty, are written by the holder of shard 0.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.caches import ControlCaches, ExecutionCluster
from cyclone.engine.controllers.clusterstatus import report_cluster_statuses
from cyclone.engine.controllers.history import (
    RUNS_BY_WORKFLOW,
    RunHistoryController,
    enqueue_history,
    history_key_of_run,
    history_key_of_workflow,
    workflow_key_of_run,
)
from cyclone.engine.controllers.pods import PodController, run_key_for_pod
from cyclone.engine.controllers.policies import tenant_namespaces
from cyclone.engine.controllers.pressure import engine_behind
from cyclone.engine.controllers.run import RunController
from cyclone.engine.controllers.triggers import TriggerControllers
from cyclone.engine.core.phases import is_terminal
from cyclone.engine.core.podstatus import pod_change_matters
from cyclone.engine.core.triggerrun import LABEL_TRIGGER
from cyclone.engine.metrics import log_resumed, tracking_runs
from cyclone.engine.placement import execution_target, run_key_of_pod
from cyclone.engine.sharding_work import NamespaceOf, ShardWork
from cyclone.kube import kinds
from cyclone.kube.clock import SYSTEM_CLOCK, Clock
from cyclone.kube.controller import Controller, KeyFunction
from cyclone.kube.execution_clusters import Connect, ExecutionClusterRegistry, connect_remote
from cyclone.kube.informer import Informer, object_key, split_key
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

CYCLONE_POD_SELECTOR = f"{keys.LABEL_POD_CREATED_BY}={keys.CREATED_BY_CYCLONE}"


def namespace_of_key(key: str) -> str | None:
    return split_key(key)[0]


@dataclass(frozen=True)
class ShardKeys:
    """Where a sharded controller's keys come from: `key_fn` of each object in `cache`."""

    controller: Controller
    namespace_of: NamespaceOf
    cache: Informer
    key_fn: KeyFunction


class OwnedRuns:
    """The run cache as far as this replica owns it: the runs the gauges count."""

    def __init__(self, runs: Informer, shards: ShardWork) -> None:
        self._runs = runs
        self._shards = shards

    def list(self, namespace: str | None = None, label_selector: str | None = None
             ) -> list[dict]:
        return [run for run in self._runs.list(namespace, label_selector)
                if self._shards.owns(run["metadata"].get("namespace"))]


def _waiting_for_slot(run: dict) -> bool:
    overall = ((run.get("status") or {}).get("overall") or {}).get("phase")
    return not is_terminal(overall) and not (run.get("status") or {}).get("deadline")


class Engine:
    """``await Engine(control, config).run()`` runs the engine until cancelled."""

    def __init__(
        self,
        control: Cluster,
        config: EngineConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        connect: Connect = connect_remote,
        shards: ShardWork | None = None,
    ) -> None:
        self.control = control
        self.shards = shards
        self._shard_keys: list[ShardKeys] = []
        self.clock = clock
        self.config = config or EngineConfig()
        self._informers = {
            kind: Informer(control, kind)
            for kind in (
                kinds.WORKFLOW, kinds.STAGE, kinds.RESOURCE, kinds.PROJECT,
                kinds.WORKFLOW_RUN_STAGES,
            )
        }
        self._informers[kinds.WORKFLOW_RUN] = Informer(
            control, kinds.WORKFLOW_RUN, index_labels=(LABEL_TRIGGER,),
            indexers={RUNS_BY_WORKFLOW: workflow_key_of_run})
        self.caches = ControlCaches(
            runs=self._informers[kinds.WORKFLOW_RUN],
            workflows=self._informers[kinds.WORKFLOW],
            stages=self._informers[kinds.STAGE],
            resources=self._informers[kinds.RESOURCE],
            projects=self._informers[kinds.PROJECT],
            run_stages=self._informers[kinds.WORKFLOW_RUN_STAGES],
            tenant_namespaces=tenant_namespaces(control),
            execution_clusters=Informer(control, kinds.EXECUTION_CLUSTER),
        )
        self._informers[kinds.NAMESPACE] = self.caches.tenant_namespaces
        self._informers[kinds.EXECUTION_CLUSTER] = self.caches.execution_clusters
        self.runs = RunController(control, self.caches, self.config, clock=clock.now)
        self.run_controller = Controller("workflowrun", self.runs.reconcile,
                                         workers=self.config.workers, clock=clock)
        self.run_controller.enqueue_on(self._informers[kinds.WORKFLOW_RUN])
        self.runs.behind = functools.partial(
            engine_behind, self.run_controller.queue, getattr(control, "rate_limiter", None))
        self._informers[kinds.WORKFLOW_RUN_STAGES].add_handler(self._on_chunk_event)
        self._shard(self.run_controller, namespace_of_key,
                    (self._informers[kinds.WORKFLOW_RUN], object_key))
        self._informers[kinds.WORKFLOW_RUN].add_handler(self._on_run_event)
        self.triggers = TriggerControllers(control, self._informers[kinds.WORKFLOW_RUN],
                                           self._informers[kinds.WORKFLOW], self.config,
                                           clock=clock)
        self.history = Controller(
            "workflowrun-history",
            RunHistoryController(control, self.caches.runs, self.caches.workflows,
                                 self.config).reconcile,
            workers=1,
            clock=clock,
        )
        enqueue_history(self.history, self._informers[kinds.WORKFLOW_RUN],
                        self._informers[kinds.WORKFLOW])
        self._shard(self.history, namespace_of_key,
                    (self._informers[kinds.WORKFLOW_RUN], history_key_of_run),
                    (self._informers[kinds.WORKFLOW], history_key_of_workflow))
        self._shard_triggers()
        self._cluster_parts: dict[str, tuple[list[Informer], Controller]] = {}
        self._cluster_tasks: dict[str, list[asyncio.Task]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()
        self.add_cluster(keys.CONTROL_CLUSTER_NAME, control)
        self.registry: ExecutionClusterRegistry | None = None
        if self.config.watch_execution_clusters:
            self.registry = ExecutionClusterRegistry(
                control, on_added=self.add_cluster, on_removed=self.remove_cluster,
                connect=connect,
            )
            self.caches.cluster_problem = self._cluster_problem

    def _on_chunk_event(self, event_type: str, obj: dict, _old: dict | None) -> None:
        """A deleted stage chunk makes its run look again (the engine writes it anew);
        the engine's own chunk writes are followed by a run write that queues the run."""
        if event_type != "DELETED":
            return
        run = (obj.get("spec") or {}).get("run")
        namespace = obj["metadata"].get("namespace")
        if run and namespace:
            self.run_controller.queue.add(f"{namespace}/{run}")

    def _shard(self, controller: Controller, namespace_of: NamespaceOf,
               *sources: tuple[Informer, KeyFunction]) -> None:
        """With shards: `controller` reconciles only keys of held shards, and the keys
        `sources` map their objects to are queued again when a shard is taken."""
        if self.shards is None:
            return
        controller.reconcile = self.shards.guarded(controller.reconcile, namespace_of)
        controller.queue.add = self.shards.owned_only(  # type: ignore[method-assign]
            controller.queue.add, namespace_of)
        self._shard_keys.extend(ShardKeys(controller, namespace_of, cache, key_fn)
                                for cache, key_fn in sources)

    def _shard_triggers(self) -> None:
        triggers = self.triggers
        runs = self._informers[kinds.WORKFLOW_RUN]
        self._shard(triggers.cron_controller, namespace_of_key,
                    (triggers.trigger_informer, triggers._cron_key),
                    (runs, triggers._trigger_of_run))
        self._shard(triggers.commit_status_controller, namespace_of_key,
                    (runs, triggers.commit_status.key_of))
        self._shard(triggers.hooks_controller, namespace_of_key,
                    (triggers.trigger_informer, triggers.hooks.key_of))

    def _queue_shard(self, shard: int) -> None:
        """A shard was taken: every key of it is looked at by this replica."""
        assert self.shards is not None
        queued = 0
        for source in list(self._shard_keys):
            for obj in source.cache.list():
                found = source.key_fn(obj)
                for key in _as_keys(found):
                    namespace = source.namespace_of(key)
                    if namespace is not None and self.shards.shard_of(namespace) == shard:
                        source.controller.queue.add(key)
                        queued += 1
        log.info("shard %d taken: %d key(s) queued", shard, queued)

    @property
    def ready(self) -> asyncio.Event:
        """Set once every cache has synced and the controllers are running."""
        return self._ready

    def add_cluster(self, name: str, cluster: Cluster) -> None:
        """Register an execution cluster: its pod informer and pod controller."""
        if name in self._cluster_parts:
            return
        pods = Informer(cluster, kinds.POD, label_selector=CYCLONE_POD_SELECTOR,
                        index_labels=(keys.LABEL_WORKFLOWRUN,))
        informers = [pods]
        events = None
        if self.config.watch_pod_events:
            events = Informer(cluster, kinds.EVENT)
            informers.append(events)
        execution = ExecutionCluster(name, cluster, pods, events)
        self.caches.execution[name] = execution
        runs = self._informers[kinds.WORKFLOW_RUN]
        pod_controller = Controller(
            f"pods-{name}",
            PodController(execution, self.control, runs, lambda: runs.synced).reconcile,
            workers=2,
            clock=self.clock,
        )
        pod_controller.enqueue_on(pods, object_key)

        def run_namespace_of_pod(key: str) -> str | None:
            pod = pods.get_by_key(key)
            owner = run_key_of_pod(pod) if pod is not None else None
            return owner[0] if owner else None

        self._shard(pod_controller, run_namespace_of_pod, (pods, object_key))
        pods.add_handler(self._wake_run_of_pod)
        if events is not None:

            def run_of_event(event: dict) -> str | None:
                involved = event.get("involvedObject") or {}
                if involved.get("kind", "Pod") != "Pod":
                    return None
                pod = pods.get(involved.get("namespace"), involved.get("name") or "")
                return run_key_for_pod(pod) if pod is not None else None

            self.run_controller.enqueue_on(events, run_of_event)
        self._cluster_parts[name] = (informers, pod_controller)
        if self._group is not None:
            self._start_cluster(name)

    def pod_controller(self, cluster: str = keys.CONTROL_CLUSTER_NAME) -> Controller:
        """The pod controller of a registered execution cluster."""
        return self._cluster_parts[cluster][1]

    def _wake_run_of_pod(self, event_type: str, pod: dict, old: dict | None) -> None:
        if event_type == "MODIFIED" and not pod_change_matters(old, pod):
            return
        key = run_key_for_pod(pod)
        if key is not None:
            self.run_controller.queue.add(key)

    def remove_cluster(self, name: str) -> None:
        """Stop watching an execution cluster; the runs aimed at it are looked at again
        (and fail, since their cluster is gone)."""
        if name == keys.CONTROL_CLUSTER_NAME or self._cluster_parts.pop(name, None) is None:
            return
        self.caches.execution.pop(name, None)
        for task in self._cluster_tasks.pop(name, []):
            task.cancel()
        self._requeue_runs_in(name)

    def _cluster_problem(self, name: str) -> str | None:
        registry = self.registry
        if registry is None:
            return None
        if name in registry.problems:
            return registry.problems[name]
        if registry.known(name) or not registry.settled:
            return ""
        return None

    def _requeue_runs_in(self, cluster: str) -> None:
        for run in self.caches.runs.list():
            if execution_target(run).cluster == cluster:
                self.run_controller.queue.add(object_key(run))

    def _start_cluster(self, name: str) -> None:
        assert self._group is not None
        informers, controller = self._cluster_parts[name]
        tasks = [
            self._group.create_task(informer.run(), name=f"informer-{name}-{informer.kind.kind}")
            for informer in informers
        ]
        tasks.append(self._group.create_task(self._run_when_synced(informers, controller)))
        self._cluster_tasks[name] = tasks
        if name != keys.CONTROL_CLUSTER_NAME:
            self._requeue_runs_in(name)

    async def _run_when_synced(self, informers: list[Informer], controller: Controller) -> None:
        for informer in informers:
            await informer.wait_synced()
        await controller.run()

    def _on_run_event(self, event_type: str, obj: dict, old: dict | None) -> None:
        """A run that ends or goes away frees a parallelism slot: wake the waiting runs."""
        if self.runs.gate.unlimited:
            return
        ended = event_type == "DELETED" or (
            is_terminal(((obj.get("status") or {}).get("overall") or {}).get("phase"))
            and not is_terminal(
                (((old or {}).get("status") or {}).get("overall") or {}).get("phase")
            )
        )
        if not ended:
            return
        for run in self.caches.runs.list():
            if _waiting_for_slot(run):
                self.run_controller.queue.add(object_key(run))

    async def run(self) -> None:
        """Run every informer and controller until cancelled."""
        tracked = (self.caches.runs if self.shards is None
                   else OwnedRuns(self._informers[kinds.WORKFLOW_RUN], self.shards))
        if self.shards is not None:
            self.shards.on_granted(self._queue_shard)
        with tracking_runs(tracked):
            await self._run()

    async def _cluster_duty(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run a cluster-wide duty: always, or while holding shard 0."""
        if self.shards is None:
            await work()
        else:
            await self.shards.while_holding(0, work)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                for informer in self._informers.values():
                    group.create_task(informer.run(), name=f"informer-{informer.kind.kind}")
                for name in list(self._cluster_parts):
                    self._start_cluster(name)
                if self.registry is not None:
                    group.create_task(self.registry.run(), name="execution-clusters")
                for informer in self._informers.values():
                    await informer.wait_synced()
                log_resumed(self.caches.runs.list())
                for informer in self._cluster_parts[keys.CONTROL_CLUSTER_NAME][0]:
                    await informer.wait_synced()
                if self.registry is not None:
                    await self.registry.wait_settled()
                group.create_task(self.run_controller.run(), name="controller-workflowrun")
                if self.registry is not None:
                    group.create_task(self._cluster_duty(lambda: report_cluster_statuses(
                        self.control, self.registry, self.caches, self.config,
                        self.runs.clock)), name="execution-cluster-status")
                group.create_task(self.triggers.run(), name="controller-triggers")
                group.create_task(self.history.run(), name="controller-workflowrun-history")
                self._ready.set()
                log.info("engine ready: %d execution cluster(s)", len(self._cluster_parts))
            except BaseException:
                self._group = None
                raise


def _as_keys(found: str | Iterable[str] | None) -> Iterable[str]:
    if found is None:
        return ()
    return (found,) if isinstance(found, str) else found
