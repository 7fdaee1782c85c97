"""What happens once a run is terminal: notifications once, then GC; and the finalizer
that makes deleting a run clean up first.

A terminal run leaves nothing running: a stage pod its status never recorded (created by
a reconcile whose write did not land before the run ended) is deleted.

Notifications are recorded per address in ``status.notifications`` right after sending,
so a restart does not send them again (a crash between the POST and the status write can
repeat one, never skip one; the repeat carries the same delivery id). A write that meets a
Conflict is made again on the run as it is now, since an unrecorded notification would be
sent again. GC deletes the run's stage pods and the Secrets of credentials bound to them
(by label: a Secret whose pod never came is collected too), runs the GC pod
``wfrgc--{run}`` that removes ``workflowruns/{run}`` from the tenant PVC, records
``status.dataRemoved`` once it has succeeded, deletes it and sets ``status.cleaned``:
once the GC pod is deleted nothing but that record tells a restarted engine that GC has
run. Where the workload namespace refuses the GC pod because it is terminating or gone
(its tenant being deleted), collection ends with the stage pods deleted: the namespace
takes the tenant PVC, and so the run's data, with it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from cyclone.api import keys
from cyclone.api.common import PodPhase
from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.caches import ControlCaches, ExecutionCluster
from cyclone.engine.controllers.scm_api import tenant_allows_local_addresses
from cyclone.engine.controllers.writer import StatusWriter
from cyclone.engine.core.gcpod import (
    bound_secrets_of,
    bound_secrets_selector,
    build_gc_pod,
    gc_due,
    gc_pod_refused_for_good,
)
from cyclone.engine.core.names import gc_pod_name
from cyclone.engine.core.observing import pod_still_running
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.stopping import forced_stop, pod_deletion_grace
from cyclone.engine.core.timefmt import parse_rfc3339
from cyclone.engine.core.weburl import run_link, with_link
from cyclone.engine.notify import (
    delivery_id,
    notification_due,
    send_notification,
    send_to_endpoint,
)
from cyclone.engine.placement import checked_execution_target, execution_target
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, ApiError, NotFound

log = logging.getLogger(__name__)

FINALIZER = keys.FINALIZER_RUN_CLEANUP
GC_RETRY_SECONDS = 5.0
LOG_WAIT_RECHECK_SECONDS = 2.0
DATA_REMOVED = "dataRemoved"


class RunFinisher:
    def __init__(
        self,
        control,
        caches: ControlCaches,
        config: EngineConfig,
        writer: StatusWriter,
    ) -> None:
        self.control = control
        self.caches = caches
        self.config = config
        self.writer = writer

    async def finish(self, state: RunState) -> float | None:
        """Notify, then collect after the GC delay; returns when to look again."""
        await self._stop_pods_still_running(state.run)
        if await self._notify(state):
            written = await self._record_notifications(state)
            if written is None:
                return 0.0
            state = RunState(written, state.now)
        if not self.config.gc_enabled or state.status.get("cleaned"):
            return None
        ended = state.status.get("completionTime") or state.overall.get("lastTransitionTime")
        due = gc_due(parse_rfc3339(ended or state.now), self.config.gc_delay_seconds,
                     state.run["metadata"].get("annotations") or {})
        if state.now < due:
            return (due - state.now).total_seconds()
        logs_due = due + timedelta(seconds=self.config.gc_log_wait_seconds)
        if state.now < logs_due and self._logs_pending(state.run):
            return min((logs_due - state.now).total_seconds(), LOG_WAIT_RECHECK_SECONDS)
        done = await self._collect(state.run)
        if done is None:
            return GC_RETRY_SECONDS
        if not done:
            return None
        state = await self._remove_gc_pod(state)
        if state is None:
            return 0.0
        state.status["cleaned"] = True
        if await self.writer.write_status(state) is None:
            return 0.0
        return None

    async def finalize(self, run: dict) -> float | None:
        """A run being deleted: clean up (without waiting for the GC delay), then let go."""
        if FINALIZER not in (run["metadata"].get("finalizers") or []):
            return None
        cleaned = bool((run.get("status") or {}).get("cleaned"))
        if self.config.gc_enabled and not cleaned:
            done = await self._collect(run)
            if done is None:
                return GC_RETRY_SECONDS
            if not done:
                return None
            deleted_since = parse_rfc3339(run["metadata"]["deletionTimestamp"])
            state = await self._remove_gc_pod(RunState(run, deleted_since))
            if state is None:
                return 0.0
            run = state.run
        elif not cleaned:
            await self._delete_stage_pods(run)
            await self._delete_bound_secrets(run)
        if await self.writer.remove_finalizer(run, FINALIZER) is None:
            return 0.0
        return None

    async def _record_notifications(self, state: RunState) -> dict | None:
        """Write the notifications just sent, again onto the current run on a Conflict."""
        sent = dict(state.status.get("notifications") or {})

        def apply(target: RunState) -> None:
            recorded = target.mutable("notifications")
            for address, result in sent.items():
                recorded.setdefault(address, result)

        return await self.writer.record(state, apply)

    async def _remove_gc_pod(self, state: RunState) -> RunState | None:
        """Record that the run's data is removed, then delete the GC pod that removed it;
        None on a Conflict."""
        if not state.status.get(DATA_REMOVED):
            state.status[DATA_REMOVED] = True
            written = await self.writer.write_status(state)
            if written is None:
                return None
            state = RunState(written, state.now)
        target = await checked_execution_target(self.control, state.run)
        execution = self.caches.execution_cluster(target.cluster)
        if execution is not None:
            try:
                await execution.cluster.delete(
                    kinds.POD, gc_pod_name(state.name), target.namespace,
                    grace_period_seconds=0)
            except NotFound:
                pass
        return state

    async def _stop_pods_still_running(self, run: dict) -> None:
        """Delete the stage pods of a terminal run that still run and are not being
        deleted. Ending a run stops the pods its status records; this catches the rest (a
        pod created by a reconcile whose status write did not land before the run ended),
        which nothing else would stop. A forced stop also cuts short the grace period of
        pods still terminating (a stop, then a forced one)."""
        execution = self._execution(run)
        if execution is None:
            return
        grace = pod_deletion_grace(run)
        forced = forced_stop(run)
        for pod in self._stage_pods(run):
            meta = pod["metadata"]
            if not pod_still_running(pod) or (meta.get("deletionTimestamp") and not (
                    forced and meta.get("deletionGracePeriodSeconds"))):
                continue
            log.info("deleting pod %s of finished run %s", meta["name"],
                     run["metadata"]["name"])
            try:
                await execution.cluster.delete(kinds.POD, meta["name"], meta["namespace"],
                                               grace_period_seconds=grace)
            except NotFound:
                pass

    async def _notify(self, state: RunState) -> bool:
        """Send to the workflow's receivers its policy asks for, and to every server-wide
        endpoint (recorded under its name), what is not recorded yet."""
        workflow_name = (state.spec.get("workflowRef") or {}).get("name") or ""
        workflow = self.caches.workflows.get(state.namespace, workflow_name)
        notification = ((workflow or {}).get("spec") or {}).get("notification") or {}
        phase = state.overall_phase or ""
        recorded = state.status.get("notifications") or {}
        due = [
            (receiver.get("type") or "Webhook", address)
            for receiver in notification.get("receivers") or []
            for address in receiver.get("addresses") or []
            if address not in recorded
        ] if notification and notification_due(notification.get("policy"), phase) else []
        endpoints = [] if state.status.get("cleaned") else [
            e for e in self.config.notification_endpoints if e.name not in recorded]
        if not due and not endpoints:
            return False
        done = state.mutable("notifications")
        link = run_link(self.config.web_url_template, self.config.callback_base_url, state.run)
        run = with_link(state.run_with_status(), link)
        allow_local = await tenant_allows_local_addresses(self.control, state.namespace) \
            if due else False
        for receiver_type, address in due:
            if address in done:
                continue
            result = await send_notification(
                receiver_type, address, run, self.config.smtp, self.config.http_timeout_seconds,
                allow_local=allow_local, link=link,
            )
            done[address] = result.as_status()
        for endpoint in endpoints:
            result = await send_to_endpoint(
                endpoint.name, endpoint.url, run, self.config.http_timeout_seconds,
                delivery=delivery_id(state.run["metadata"].get("uid") or "", endpoint.name))
            done[endpoint.name] = result.as_status()
        return True

    def _execution(self, run: dict) -> ExecutionCluster | None:
        return self.caches.execution_cluster(execution_target(run).cluster)

    def _stage_pods(self, run: dict) -> list[dict]:
        execution = self._execution(run)
        if execution is None:
            return []
        selector = (
            f"{keys.LABEL_WORKFLOWRUN}={run['metadata']['name']},"
            f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}"
        )
        return [
            pod for pod in execution.pods.list(execution_target(run).namespace, selector)
            if (pod["metadata"].get("annotations") or {}).get(
                keys.ANNOTATION_META_NAMESPACE, run["metadata"]["namespace"]
            ) == run["metadata"]["namespace"]
        ]

    def _logs_pending(self, run: dict) -> bool:
        """Whether a stage pod of the run still waits for its logs to be stored."""
        return any(
            not (pod["metadata"].get("annotations") or {}).get(keys.ANNOTATION_LOGS_COLLECTED)
            for pod in self._stage_pods(run)
        )

    async def _delete_stage_pods(self, run: dict) -> None:
        execution = self._execution(run)
        if execution is None:
            return
        target = execution_target(run)
        for pod in self._stage_pods(run):
            try:
                await execution.cluster.delete(
                    kinds.POD, pod["metadata"]["name"], target.namespace, grace_period_seconds=0
                )
            except NotFound:
                pass

    async def _delete_bound_secrets(self, run: dict) -> None:
        """Delete the run's bound-credentials Secrets by their labels, owned by a pod or
        not: one left by a crash between the Secret and its pod, or whose ownership patch
        failed, has no owner to take it (nor has it on a cluster without a garbage
        collector). Done once, before the GC pod is made (or when the run goes without GC):
        no stage pod, and so no new Secret, comes after. A failure is logged and does not
        hold collection up."""
        execution = self._execution(run)
        if execution is None:
            return
        namespace = execution_target(run).namespace
        try:
            listed = await execution.cluster.list(
                kinds.SECRET, namespace,
                label_selector=bound_secrets_selector(run["metadata"]["name"]))
            for name in bound_secrets_of(listed.items, run["metadata"]["namespace"]):
                try:
                    await execution.cluster.delete(kinds.SECRET, name, namespace)
                except NotFound:
                    pass
        except ApiError as exc:
            log.warning("cannot delete the bound credentials of run %s: %s",
                        run["metadata"]["name"], exc)

    async def _collect(self, run: dict) -> bool | None:
        """Drive GC one step: True once the data is removed (the GC pod, if one could run,
        has succeeded), False while the GC pod works, None on error.

        The GC pod goes where the run's tenant may go: a run whose ``executionContext`` was
        edited after admission to name another tenant's place is collected at its home."""
        if (run.get("status") or {}).get(DATA_REMOVED):
            return True
        target = await checked_execution_target(self.control, run)
        execution = self.caches.execution_cluster(target.cluster)
        if execution is None:
            return True
        name = run["metadata"]["name"]
        try:
            await self._delete_stage_pods(run)
            gc_name = gc_pod_name(name)
            pod = execution.pods.get(target.namespace, gc_name)
            if pod is None:
                try:
                    pod = await execution.cluster.get(kinds.POD, gc_name, target.namespace)
                except NotFound:
                    pod = None
            if pod is None:
                await self._delete_bound_secrets(run)
                manifest = build_gc_pod(
                    name, target.namespace, target.pvc, self.config.gc_image,
                    workflow=((run.get("spec") or {}).get("workflowRef") or {}).get("name"),
                    meta_namespace=run["metadata"]["namespace"],
                    resources=self.config.gc_resources,
                )
                try:
                    await execution.cluster.create(manifest, namespace=target.namespace)
                except AlreadyExists:
                    pass
                except ApiError as exc:
                    if gc_pod_refused_for_good(exc.code, exc.message):
                        return True
                    raise
                return False
            phase = (pod.get("status") or {}).get("phase")
            if phase == PodPhase.SUCCEEDED:
                return True
            if phase != PodPhase.FAILED:
                return False
            await execution.cluster.delete(
                kinds.POD, gc_name, target.namespace, grace_period_seconds=0
            )
            log.warning("GC pod %s/%s failed; it will be retried", target.namespace, gc_name)
            return None
        except NotFound:
            return None
        except ApiError as exc:
            log.warning("GC of run %s: %s", name, exc)
            return None
