"""The cron trigger controller, and `TriggerControllers`, which runs every trigger-related
controller of the engine as one unit.

``CronTriggerController.reconcile("namespace/name")`` is level-based: it reads the trigger,
its runs and its workflow from the caches, asks `decide_firing` what is due and returns
when the next scheduled time comes. A firing starts the run named after its scheduled
time through `cyclone.engine.runstart.start_run` (the checks every new run gets), then,
under ``concurrencyPolicy: Replace``, stops the other unfinished runs, then records
``status.count`` and ``status.lastFireTime`` with the trigger's resourceVersion: an engine
killed in between finds the run already there on restart and only does the rest, and a
reconcile that read a stale trigger fails the status write instead of counting twice. A
run `start_run` refuses is not created and stops nothing; the firing is recorded without
counting, and a Warning Event on the trigger (reason ``RunRefused``) says why.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.caches import ObjectCache
from cyclone.engine.controllers.commit_status import CommitStatusController
from cyclone.engine.controllers.scm_hooks import WebhookRegistrationController
from cyclone.engine.core.cron import (
    CronError,
    FiringAction,
    cron_run_name,
    decide_firing,
    parse_schedule,
    unfinished_runs,
)
from cyclone.engine.core.timefmt import parse_rfc3339, rfc3339
from cyclone.engine.core.triggerrun import (
    LABEL_TRIGGER,
    TRIGGER_CRON,
    trigger_run,
    workflow_name_of,
)
from cyclone.engine.runstart import record_refusal, start_run
from cyclone.kube import kinds
from cyclone.kube.clock import SYSTEM_CLOCK
from cyclone.kube.clock import Clock as TimeSource
from cyclone.kube.controller import Controller
from cyclone.kube.errors import AlreadyExists, Conflict, Forbidden, Invalid, NotFound
from cyclone.kube.informer import Informer, object_key, split_key
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
REQUEUE_SLACK_SECONDS = 0.005
STALE_RETRY_SECONDS = 0.05
"""After a status write lost to a newer trigger: look again once the cache has caught up."""


def _is_cron(trigger: dict) -> bool:
    return (trigger.get("spec") or {}).get("type") == "Cron"


class CronTriggerController:
    def __init__(
        self,
        control: Cluster,
        triggers: ObjectCache,
        runs: ObjectCache,
        workflows: ObjectCache,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.control = control
        self.triggers = triggers
        self.runs = runs
        self.workflows = workflows
        self.clock = clock or (lambda: datetime.now(UTC))

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        trigger = self.triggers.get(namespace, name)
        if trigger is None or not _is_cron(trigger):
            return None
        spec = trigger.get("spec") or {}
        if spec.get("disabled") or trigger["metadata"].get("deletionTimestamp"):
            return None
        cron = spec.get("cron") or {}
        try:
            schedule = parse_schedule(cron.get("schedule") or "", cron.get("timezone"))
        except CronError as exc:
            log.warning("trigger %s: %s", key, exc)
            return None
        now = self.clock()
        status = trigger.get("status") or {}
        since = parse_rfc3339(
            status.get("lastFireTime") or trigger["metadata"].get("creationTimestamp") or now
        )
        mine = self.runs.list(namespace, f"{LABEL_TRIGGER}={name}")
        decision = decide_firing(
            schedule, now, since=since,
            starting_deadline_seconds=spec.get("startingDeadlineSeconds"),
            concurrency_policy=spec.get("concurrencyPolicy"),
            active_runs=unfinished_runs(mine),
        )
        wake = max((decision.next_time - now).total_seconds(), 0.0) + REQUEUE_SLACK_SECONDS
        if decision.action == FiringAction.MISSED:
            log.info("trigger %s: skipped %s, past its starting deadline", key,
                     rfc3339(decision.scheduled_time))
        if decision.action != FiringAction.FIRE or decision.scheduled_time is None:
            return wake
        workflow_name = workflow_name_of(trigger)
        workflow = self.workflows.get(namespace, workflow_name) if workflow_name else None
        if workflow is None:
            log.warning("trigger %s: workflow %r not found; no run created", key,
                        workflow_name)
            return wake
        run = trigger_run(trigger, cron_run_name(name, decision.scheduled_time), TRIGGER_CRON)
        started = await self._start(trigger, run, workflow, now)
        for run_name in decision.replace:
            if started and run_name != run["metadata"]["name"]:
                await self._stop(namespace, run_name)
        if not await self._record(trigger, decision.scheduled_time, started=started):
            return STALE_RETRY_SECONDS
        return wake

    async def _start(self, trigger: dict, run: dict, workflow: dict, now: datetime) -> bool:
        """Whether the firing's run exists now: created, or found from before a crash. A
        run `start_run` refuses is not created; the trigger gets an Event saying why."""
        key = object_key(trigger)
        try:
            await start_run(self.control, run, workflow=workflow)
        except AlreadyExists:
            log.info("trigger %s: run %s already exists", key, run["metadata"]["name"])
        except (Invalid, Forbidden) as exc:
            log.warning("trigger %s: no run: %s", key, exc)
            await record_refusal(self.control, trigger, run["metadata"]["name"], exc, now)
            return False
        return True

    async def _stop(self, namespace: str, run: str) -> None:
        try:
            await self.control.patch(kinds.WORKFLOW_RUN, run, {"spec": {"stopped": True}},
                                     namespace)
        except NotFound:
            pass

    async def _record(self, trigger: dict, fired: datetime, *, started: bool) -> bool:
        """``status.lastFireTime`` is the firing done, ``status.count`` counts it when its
        run exists: a refused firing is not tried again, nor counted."""
        updated = copy.deepcopy(trigger)
        status = updated["status"] = dict(updated.get("status") or {})
        status["count"] = int(status.get("count") or 0) + (1 if started else 0)
        status["lastFireTime"] = rfc3339(fired)
        try:
            await self.control.replace_status(updated)
        except (Conflict, NotFound):
            return False
        return True


class TriggerControllers:
    """The trigger informer and the controllers that act on triggers and their runs.

    ``runs`` and ``workflows`` are the engine's informers; this unit adds its own trigger
    informer, waits for every cache it reads, then runs its controllers until cancelled.
    """

    def __init__(
        self,
        control: Cluster,
        runs: Informer,
        workflows: Informer,
        config: EngineConfig | None = None,
        *,
        clock: TimeSource = SYSTEM_CLOCK,
    ) -> None:
        self.control = control
        self.config = config or EngineConfig()
        self.trigger_informer = Informer(control, kinds.WORKFLOW_TRIGGER)
        self._runs = runs
        self._workflows = workflows
        self.cron = CronTriggerController(control, self.trigger_informer, runs, workflows,
                                          clock=clock.now)
        self.cron_controller = Controller("cron-triggers", self.cron.reconcile, workers=2,
                                          clock=clock)
        self.cron_controller.enqueue_on(self.trigger_informer, self._cron_key)
        self.cron_controller.enqueue_on(runs, self._trigger_of_run)
        workflows.add_handler(self._on_workflow_event)
        self.commit_status = CommitStatusController(control, runs, self.config)
        self.commit_status_controller = Controller(
            "commit-status", self.commit_status.reconcile, workers=2, clock=clock)
        self.commit_status_controller.enqueue_on(runs, self.commit_status.key_of)
        self.hooks = WebhookRegistrationController(control, self.trigger_informer, self.config)
        self.hooks_controller = Controller("scm-webhooks", self.hooks.reconcile, workers=1,
                                           clock=clock)
        self.hooks_controller.enqueue_on(self.trigger_informer, self.hooks.key_of)

    @staticmethod
    def _cron_key(trigger: dict) -> str | None:
        return object_key(trigger) if _is_cron(trigger) else None

    @staticmethod
    def _trigger_of_run(run: dict) -> str | None:
        """A run of a cron trigger ending may unblock a Forbid trigger."""
        meta = run.get("metadata") or {}
        trigger = (meta.get("labels") or {}).get(LABEL_TRIGGER)
        return f"{meta.get('namespace')}/{trigger}" if trigger else None

    def _on_workflow_event(self, event_type: str, obj: dict, old: dict | None) -> None:
        if event_type != "ADDED":
            return
        namespace = obj["metadata"].get("namespace")
        for trigger in self.trigger_informer.list(namespace):
            if _is_cron(trigger) and workflow_name_of(trigger) == obj["metadata"]["name"]:
                self.cron_controller.queue.add(object_key(trigger))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.trigger_informer.run(), name="informer-WorkflowTrigger")
            for informer in (self.trigger_informer, self._runs, self._workflows):
                await informer.wait_synced()
            group.create_task(self.cron_controller.run(), name="controller-cron-triggers")
            group.create_task(self.commit_status_controller.run(),
                              name="controller-commit-status")
            group.create_task(self.hooks_controller.run(), name="controller-scm-webhooks")
