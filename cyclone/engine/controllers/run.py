"""The WorkflowRun controller: one reconcile moves a run one step closer to its end.

``reconcile("namespace/name")`` reads the run, its workflow, stages and pods from the
caches, folds what the pods say into the stage statuses, starts what the DAG allows,
writes the status once and returns when to look again. Everything it decides is in the
run object, so a restart continues where the last write left off; pod names are
deterministic per (run, stage, attempt), so a repeated step never makes a second pod.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers import delegation as delegations
from cyclone.engine.controllers.admission import AdmissionGate
from cyclone.engine.controllers.books import RunBooks, ScopeCache, scope_key
from cyclone.engine.controllers.caches import ControlCaches, ExecutionCluster
from cyclone.engine.controllers.finish import FINALIZER, RunFinisher
from cyclone.engine.controllers.launch import (
    StageInputs,
    cache_decision,
    project_integrations,
    start_pod_stage,
)
from cyclone.engine.controllers.observe import output_masker
from cyclone.engine.controllers.policies import TenantPolicies
from cyclone.engine.controllers.secrets import prefetch_secrets
from cyclone.engine.controllers.stage_objects import StageObjects
from cyclone.engine.controllers.versioned import PerVersion
from cyclone.engine.controllers.writer import StatusWriter
from cyclone.engine.core.dag import dag_stages, plan_step
from cyclone.engine.core.observing import (
    expire_delegations,
    has_termination_messages,
    observe_pod,
    pod_still_running,
    retry_policy,
)
from cyclone.engine.core.parallelism import Admission
from cyclone.engine.core.pending import claims_to_read
from cyclone.engine.core.phases import (
    CANCELLED,
    FAILED,
    REASON_TOO_MANY_WAITING,
    RUNNING,
    WAITING,
    is_terminal,
)
from cyclone.engine.core.podbuilder import ArtifactUpload
from cyclone.engine.core.progress import (
    REASON_INVALID,
    cancel_blocked,
    cluster_verdict,
    end_run,
    enter_scope,
    invalid_objects,
    invalid_references,
    mark_admitted,
    mark_queued,
    plan_starts,
    record_stage_shapes,
    requeue_after,
    scope_failure,
    settle_overall,
    stages_missing,
    stages_to_observe,
    timed_out,
    workflow_missing,
)
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.stagestart import (
    mark_delegation_waiting,
    project_of_run,
    quota_not_before,
    resources_of_run,
    reuse_succeeded_stages,
)
from cyclone.engine.core.stopping import pod_deletion_grace, stop_cause
from cyclone.engine.core.tenancy import (
    REASON_TENANCY_VIOLATION,
    TenantPolicy,
    describe,
    run_violations,
)
from cyclone.engine.core.timeouts import deadline_for
from cyclone.engine.core.tokens import Purpose, artifact_upload_token, artifact_upload_url
from cyclone.engine.core.validation import validate_output_references
from cyclone.engine.core.writeback import progress_only
from cyclone.engine.placement import (
    ExecutionTarget,
    admission_violations,
    execution_target,
    read_policy,
    tenant_of,
)
from cyclone.engine.signing import token_key
from cyclone.kube import kinds
from cyclone.kube.errors import ApiError, NotFound
from cyclone.kube.informer import split_key
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)


Clock = Callable[[], datetime]


_dag_of = PerVersion(lambda workflow: dag_stages(
    (workflow.get("spec") or {}).get("stages") or []))
"""A workflow's DAG nodes, built once per stored version."""

_trivial_of = PerVersion(lambda workflow: frozenset(
    node.name for node in _dag_of(workflow) if node.trivial))
"""A workflow's trivial stages, once per stored version."""


class RunController:
    def __init__(
        self,
        control: Cluster,
        caches: ControlCaches,
        config: EngineConfig,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.control = control
        self.caches = caches
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.gate = AdmissionGate(config)
        self.policies = (
            TenantPolicies(control, caches.tenant_namespaces, caches.execution_clusters)
            if caches.tenant_namespaces is not None and caches.execution_clusters is not None
            else None)
        self.writer = StatusWriter(control, caches.runs, caches.run_stages,
                                   config.stage_chunk_threshold,
                                   progress_delay=config.progress_write_delay_seconds,
                                   clock=lambda: self.clock().timestamp())
        self.finisher = RunFinisher(control, caches, config, self.writer)
        self.books = RunBooks()
        self.scopes = ScopeCache()
        self.stage_objects = StageObjects(caches.stages)
        self._upload_key: bytes | None = None
        self.behind: Callable[[], bool] = lambda: False
        """Whether the engine is behind its work (`pressure.engine_behind`): only then is
        progress held back (`StatusWriter.write_status` with ``may_hold``)."""

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        run = self.writer.current(namespace or "", name)
        if run is None:
            self.books.forget(namespace or "", name)
            self.writer.chunks.forget(namespace or "", name)
            return None
        if run["metadata"].get("deletionTimestamp"):
            return await self.finisher.finalize(run)
        if FINALIZER not in (run["metadata"].get("finalizers") or []):
            run = await self.writer.add_finalizer(run, FINALIZER)
            if run is None:
                return 0.0
        state = RunState(run, self.clock())
        if is_terminal(state.overall_phase):
            self.books.forget(state.namespace, state.name)
            return await self.finisher.finish(state)
        requeue = await self._progress(state)
        if state.changed or self.writer.holds(state):
            written = await self.writer.write_status(
                state, may_hold=self.gate.unlimited and progress_only(state) and self.behind())
            self.books.close(state, written)
            if written is None:
                return 0.0
            state = RunState(written, state.now)
            held_for = self.writer.due_in(state.namespace, state.name)
            if held_for is not None:
                requeue = held_for if requeue is None else min(requeue, held_for)
        else:
            self.books.close(state, None)
        book = self.books.current(state)
        sent = await delegations.send_pending(
            self.control, state, self.config.system_namespace,
            self.config.callback_base_url, self.config.http_timeout_seconds,
            None if book is None else book.in_phase(WAITING),
        )
        if sent and await self.writer.record(
                state, lambda target: delegations.mark_sent(target, sent)) is None:
            return 0.0
        return requeue

    async def _progress(self, state: RunState) -> float | None:
        spec = state.spec
        if spec.get("stopped"):
            await self._end(state, CANCELLED, *stop_cause(state.run), scope=self._scope(state))
            return None
        workflow_name = (spec.get("workflowRef") or {}).get("name")
        workflow = self.caches.workflows.get(state.namespace, workflow_name or "")
        if workflow is None:
            await self._end(state, FAILED, *workflow_missing(state.namespace, workflow_name))
            return None
        wf_stages = _dag_of(workflow)
        start, end = spec.get("startStages") or None, spec.get("endStages") or None
        problems, scope = self.scopes(workflow, wf_stages, start, end)
        failure = scope_failure(problems)
        if failure is not None:
            await self._end(state, FAILED, *failure)
            return None
        found = self.stage_objects.lookup(state.namespace, scope_key(workflow, start, end),
                                          scope)
        failure = stages_missing(workflow_name, dict.fromkeys(found.missing))
        if failure is not None:
            await self._end(state, FAILED, *failure, scope=scope)
            return None
        stage_objs = found.objects
        if state.status.get("deadline") is None:
            failure = invalid_objects(workflow, stage_objs) or invalid_references(
                validate_output_references(workflow, stage_objs, spec.get("stages") or []))
            if failure is not None:
                await self._end(state, FAILED, *failure, scope=scope)
                return None
            refused = await admission_violations(self._policy_reads, state.run, workflow,
                                                 stage_objs)
            if refused and self.policies is not None:
                refused = await admission_violations(self.control, state.run, workflow,
                                                     stage_objs)
            if refused:
                await self._end(state, FAILED, REASON_TENANCY_VIOLATION, describe(refused),
                                scope=scope)
                return None
            if not await self._admit(state, workflow, scope):
                return None
        failure = timed_out(state)
        if failure is not None:
            await self._end(state, FAILED, *failure, scope=scope)
            return None
        deadline = state.deadline()

        target = execution_target(state.run)
        execution = self.caches.execution_cluster(target.cluster)
        if execution is None:
            verdict = cluster_verdict(
                target.cluster, connected=False,
                problem=self.caches.cluster_problem(target.cluster),
                unreachable_limit=self.config.cluster_unreachable_seconds)
        else:
            failing_for, error = execution.unreachable()
            verdict = cluster_verdict(
                target.cluster, connected=True, failing_for=failing_for, error=error,
                unreachable_limit=self.config.cluster_unreachable_seconds)
        if verdict.failure is not None:
            await self._end(state, FAILED, *verdict.failure, scope=scope)
            return None
        if execution is None or verdict.recheck is not None:
            return verdict.recheck

        book = self.books.open(state, workflow, wf_stages, start, end, scope)
        enter_scope(state, scope if book is None else book.unphased())
        wakeups: list[datetime] = [deadline] if deadline else []
        wakeups += await self._observe(state, execution, workflow, stage_objs,
                                       None if book is None else book.in_phase(RUNNING))
        await delegations.take_reported_results(self.control, state,
                                                self.config.system_namespace)
        if book is not None:
            book.update(state.stages, state.touched_stages)
        delegation_deadline = expire_delegations(
            state, None if book is None else book.in_phase(WAITING))
        if delegation_deadline:
            wakeups.append(delegation_deadline)

        if book is None:
            step = plan_step(wf_stages, state.stages, start, end)
        else:
            book.update(state.stages, state.touched_stages)
            step = book.step()
        cancel_blocked(state, step.blocked)
        paused = bool(spec.get("paused"))
        if not paused and step.start:
            inputs = await self._inputs(state, workflow, target,
                                        [stage_objs.get(name) for name in step.start])
            refused = run_violations(inputs.policy, state.run)
            if refused and inputs.fresh_policy is not None:
                inputs = dataclasses.replace(inputs, policy=await inputs.fresh_policy())
                refused = run_violations(inputs.policy, state.run)
            if refused:
                await self._end(state, FAILED, REASON_TENANCY_VIOLATION, describe(refused),
                                scope=scope)
                return None
            wakeups += await self._start_stages(state, step.start, stage_objs, inputs, execution)
        if book is None:
            record_stage_shapes(state, wf_stages)
            settle_overall(state, _trivial_of(workflow), paused)
        else:
            book.update(state.stages, state.touched_stages)
            record_stage_shapes(state, book.misshapen())
            book.update(state.stages, state.touched_stages)
            settle_overall(state, _trivial_of(workflow), paused, book.overall_phase())
        if is_terminal(state.overall_phase):
            return 0.0
        return requeue_after(state.now, wakeups)

    @property
    def _policy_reads(self) -> Cluster:
        return self.control if self.policies is None else self.policies.reads  # type: ignore[return-value]

    async def _policy(self, tenant: str, clusters: list[str]) -> TenantPolicy:
        if self.policies is None:
            return await read_policy(self.control, tenant, clusters)
        return await self.policies.cached(tenant, clusters)

    def _scope(self, state: RunState) -> list[str]:
        """The stages the run would run, when its workflow is known and its range valid."""
        spec = state.spec
        workflow = self.caches.workflows.get(
            state.namespace, (spec.get("workflowRef") or {}).get("name") or "")
        if workflow is None:
            return []
        start, end = spec.get("startStages") or None, spec.get("endStages") or None
        problems, scope = self.scopes(workflow, _dag_of(workflow), start, end)
        return [] if problems else list(scope)

    async def _admit(self, state: RunState, workflow: dict, scope: Iterable[str]) -> bool:
        others = () if self.gate.unlimited else self.caches.runs.list()  # O(runs): only if used
        decision = await self.gate.decide(state.run, others)
        if decision == Admission.REJECT:
            await self._end(
                state, FAILED, REASON_TOO_MANY_WAITING,
                "too many runs are waiting for a parallelism slot", scope=scope,
            )
            return False
        if decision == Admission.QUEUE:
            mark_queued(state)
            return False
        default = timedelta(seconds=self.config.default_timeout_seconds)
        try:
            deadline = deadline_for(state.run, state.now, default)
        except ValueError as exc:
            await self._end(state, FAILED, REASON_INVALID, str(exc), scope=scope)
            return False
        mark_admitted(state, deadline)
        previous_name = state.spec.get("retryOf")
        if previous_name:
            previous = self.writer.current(state.namespace, previous_name)
            if previous is not None:
                reuse_succeeded_stages(state, previous, workflow["metadata"]["name"])
        return True

    async def _observe(
        self, state: RunState, execution: ExecutionCluster, workflow: dict,
        stage_objs: dict[str, dict], running: list[str] | None,
    ) -> list[datetime]:
        """Fold what the stages' pods say into their statuses (``running``: the Running
        stages, when known); returns when stages whose pods wait to start reach the
        pending timeout."""
        finished_but_running: list[dict] = []
        pending_deadlines: list[datetime] = []
        for name in stages_to_observe(state, running):
            pod_ref = state.stages[name]["pod"]
            pod = execution.pods.get(pod_ref.get("namespace"), pod_ref["name"])
            if pod is None:
                try:
                    pod = await execution.cluster.get(
                        kinds.POD, pod_ref["name"], pod_ref.get("namespace")
                    )
                except NotFound:
                    pod = None
            events = execution.pod_events(pod_ref.get("namespace"), pod_ref["name"])
            masker = None
            if has_termination_messages(pod):
                masker = await output_masker(
                    self.control, execution.cluster, state.run,
                    [state.spec, workflow.get("spec"), *stage_objs.values()], pod)
            claims = await _claims(execution.cluster, pod)
            pending_until = observe_pod(
                state, name, pod, retry_policy(stage_objs.get(name)), events, masker, claims,
                self.config.pod_pending_timeout_seconds)
            if pending_until is not None:
                pending_deadlines.append(pending_until)
            if state.stage_phase(name) != RUNNING and pod_still_running(pod):
                finished_but_running.append(pod_ref)
        if finished_but_running:
            await _delete_pods(execution.cluster, finished_but_running, 0)
        return pending_deadlines

    async def _inputs(
        self,
        state: RunState,
        workflow: dict,
        target: ExecutionTarget,
        starting: list[dict | None],
    ) -> StageInputs:
        """What building the pods of the stages starting (``starting``: their Stage
        objects) needs."""
        namespaces = dict.fromkeys(
            (keys.SYSTEM_NAMESPACE, self.config.system_namespace, state.namespace))
        resources, resource_types = resources_of_run(state.namespace, [
            (namespace, obj) for namespace in namespaces
            for obj in self.caches.resources.list(namespace)])
        project_name = project_of_run(state.run, workflow)
        project = (
            self.caches.projects.get(state.namespace, project_name) if project_name else None
        )
        return StageInputs(
            workflow=workflow,
            resources=resources,
            resource_types=resource_types,
            project=project,
            target=target,
            config=self.config,
            policy=await self._policy(tenant_of(state.namespace), [target.cluster]),
            fresh_policy=None if self.policies is None else functools.partial(
                self.policies.fresh, tenant_of(state.namespace), [target.cluster]),
            secrets=await prefetch_secrets(self.control, state.run, workflow, starting),
            artifact_upload=await self._artifact_upload(state, project_name, workflow),
            caches=await cache_decision(self.control, state.run, project_name, target.pvc,
                                        self.config, state.now),
            integrations=await project_integrations(self.control, state.namespace, project),
        )

    async def _artifact_upload(
        self, state: RunState, project: str | None, workflow: dict
    ) -> ArtifactUpload | None:
        """Where and with which token the run's Http push resolvers upload by default."""
        if not project:
            return None
        if self._upload_key is None:
            try:
                self._upload_key = await token_key(
                    self.control, self.config.system_namespace, Purpose.ARTIFACT_UPLOAD)
            except ApiError as exc:
                log.warning("no artifact upload token for run %s: %s", state.name, exc)
                return None
        workflow_name = workflow["metadata"]["name"]
        return ArtifactUpload(
            url=artifact_upload_url(self.config.callback_base_url, project, workflow_name,
                                    state.name),
            token=artifact_upload_token(self._upload_key, tenant_of(state.namespace),
                                        state.run["metadata"].get("uid", "")),
        )

    async def _start_stages(
        self,
        state: RunState,
        names: list[str],
        stage_objs: dict[str, dict],
        inputs: StageInputs,
        execution: ExecutionCluster,
    ) -> list[datetime]:
        plan = plan_starts(state, names, stage_objs, *self._quota_backoff())
        for name in plan.delegations:
            mark_delegation_waiting(
                state, name, stage_objs[name], self.config.delegation_timeout_seconds)
        wakeups = list(plan.later)

        async def create(name: str) -> None:
            started = await start_pod_stage(
                execution.cluster, state, name, inputs.for_stage(stage_objs[name])
            )
            if not started:
                refused_until = quota_not_before(state, name, *self._quota_backoff())
                if refused_until is not None:
                    wakeups.append(refused_until)

        async with asyncio.TaskGroup() as group:
            for name in plan.pods:
                group.create_task(create(name))
        return wakeups

    def _quota_backoff(self) -> tuple[timedelta, timedelta]:
        return (timedelta(seconds=self.config.quota_retry_backoff_seconds),
                timedelta(seconds=self.config.quota_retry_max_backoff_seconds))

    async def _end(self, state: RunState, phase: str, reason: str, message: str,
                   scope: Iterable[str] = ()) -> None:
        """End the run (`progress.end_run`); the pods of its Running stages deleted now,
        with the grace `stopping.pod_deletion_grace` gives them."""
        doomed = end_run(state, phase, reason, message, scope)
        if doomed:
            execution = self.caches.execution_cluster(execution_target(state.run).cluster)
            if execution is not None:
                await _delete_pods(execution.cluster, doomed, pod_deletion_grace(state.run))


async def _claims(cluster: Cluster, pod: dict | None) -> dict[str, dict | None]:
    """The claims that may explain why `pod` waits (`pending.claims_to_read`), as read;
    None for a claim that does not exist. A claim that cannot be read is left out."""
    found: dict[str, dict | None] = {}
    if pod is None:
        return found
    namespace = pod["metadata"].get("namespace")
    for name in claims_to_read(pod):
        try:
            found[name] = await cluster.get(kinds.PERSISTENT_VOLUME_CLAIM, name, namespace)
        except NotFound:
            found[name] = None
        except ApiError as exc:
            log.debug("claim %s/%s not readable: %s", namespace, name, exc)
    return found


async def _delete_pods(cluster: Cluster, pods: list[dict], grace: int | None) -> None:
    for ref in pods:
        try:
            await cluster.delete(kinds.POD, ref["name"], ref.get("namespace"),
                                 grace_period_seconds=grace)
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("cannot delete pod %s/%s: %s", ref.get("namespace"), ref["name"], exc)
