"""The WorkflowRun controller: one reconcile moves a run one step closer to its end.

``reconcile("namespace/name")`` reads the run, its workflow, stages and pods from the
caches, folds what the pods say into the stage statuses, starts what the DAG allows,
writes the status once and returns when to look again. Everything it decides is in the
run object, so a restart continues where the last write left off; pod names are
deterministic per (run, stage, attempt), so a repeated step never makes a second pod.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers import delegation as delegations
from cyclone.engine.controllers.admission import AdmissionGate
from cyclone.engine.controllers.caches import ControlCaches, ExecutionCluster
from cyclone.engine.controllers.finish import FINALIZER, RunFinisher
from cyclone.engine.controllers.launch import (
    REASON_QUOTA,
    StageInputs,
    mark_delegation_waiting,
    reuse_succeeded_stages,
    start_pod_stage,
)
from cyclone.engine.controllers.observe import (
    expire_delegations,
    has_termination_messages,
    observe_pod,
    output_masker,
    pod_still_running,
    retry_not_before,
    retry_policy,
)
from cyclone.engine.controllers.runstate import RunState
from cyclone.engine.controllers.secrets import prefetch_secrets
from cyclone.engine.controllers.versioned import PerVersion
from cyclone.engine.controllers.writer import StatusWriter
from cyclone.engine.core.dag import dag_stages, plan_step, scope_problems, stages_in_scope
from cyclone.engine.core.parallelism import Admission
from cyclone.engine.core.phases import (
    CANCELLED,
    FAILED,
    PENDING,
    REASON_TIMEOUT,
    REASON_TOO_MANY_WAITING,
    REASON_UPSTREAM_FAILED,
    RUNNING,
    is_terminal,
)
from cyclone.engine.core.podbuilder import ArtifactUpload
from cyclone.engine.core.retries import retry_backoff
from cyclone.engine.core.status import overall_phase
from cyclone.engine.core.stopping import stop_cause
from cyclone.engine.core.tenancy import REASON_TENANCY_VIOLATION, describe, run_violations
from cyclone.engine.core.timeouts import deadline_for, deadline_text
from cyclone.engine.core.tokens import Purpose, artifact_upload_token, artifact_upload_url
from cyclone.engine.core.validation import validate_output_references
from cyclone.engine.placement import (
    ExecutionTarget,
    admission_violations,
    execution_target,
    read_policy,
    tenant_of,
)
from cyclone.kube import kinds
from cyclone.kube.errors import ApiError, NotFound
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

REASON_MANUALLY_PAUSE = "ManuallyPause"
REASON_MANUALLY_RESUME = "ManuallyResume"
REASON_QUEUED = "Queued"
REASON_WORKFLOW_NOT_FOUND = "WorkflowNotFound"
REASON_STAGE_NOT_FOUND = "StageNotFound"
REASON_INVALID = "InvalidWorkflowRun"
REASON_CLUSTER_NOT_FOUND = "ExecutionClusterNotFound"
REASON_CLUSTER_UNAVAILABLE = "ExecutionClusterUnavailable"
CLUSTER_CONNECT_RECHECK_SECONDS = 1.0

Clock = Callable[[], datetime]


_dag_of = PerVersion(lambda workflow: dag_stages(
    (workflow.get("spec") or {}).get("stages") or []))
"""A workflow's DAG nodes, built once per stored version."""


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def run_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


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
        self.writer = StatusWriter(control, caches.runs)
        self.finisher = RunFinisher(control, caches, config, self.writer)
        self._quota_failures: dict[tuple[str, str], tuple[int, datetime]] = {}
        """(run key, stage) → the refusals in a row of the stage's pod for quota, the last
        one's time."""
        self._upload_key: bytes | None = None

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        run = self.writer.current(namespace, name)
        if run is None:
            return None
        if run["metadata"].get("deletionTimestamp"):
            return await self.finisher.finalize(run)
        if FINALIZER not in (run["metadata"].get("finalizers") or []):
            run = await self.writer.add_finalizer(run, FINALIZER)
            if run is None:
                return 0.0
        state = RunState(run, self.clock())
        if is_terminal(state.overall_phase):
            for stage_key in [k for k in self._quota_failures if k[0] == key]:
                self._quota_failures.pop(stage_key, None)
            return await self.finisher.finish(state)
        requeue = await self._progress(state)
        if state.changed:
            written = await self.writer.write_status(state)
            if written is None:
                return 0.0
            state = RunState(written, state.now)
        sent = await delegations.send_pending(
            self.control, state, self.config.system_namespace,
            self.config.callback_base_url, self.config.http_timeout_seconds,
        )
        if sent and await self.writer.record(
                state, lambda target: delegations.mark_sent(target, sent)) is None:
            return 0.0
        return requeue

    async def _progress(self, state: RunState) -> float | None:
        spec = state.spec
        if spec.get("stopped"):
            await self._end(state, CANCELLED, *stop_cause(state.run))
            return None
        workflow_name = (spec.get("workflowRef") or {}).get("name")
        workflow = self.caches.workflows.get(state.namespace, workflow_name or "")
        if workflow is None:
            await self._end(
                state, FAILED, REASON_WORKFLOW_NOT_FOUND,
                f"workflow {workflow_name!r} not found in {state.namespace}",
            )
            return None
        wf_stages = _dag_of(workflow)
        start, end = spec.get("startStages") or None, spec.get("endStages") or None
        problems = scope_problems(wf_stages, start, end)
        if problems:
            await self._end(state, FAILED, REASON_INVALID,
                            "; ".join(f"{field}: {message}" for field, message in problems))
            return None
        scope = stages_in_scope(wf_stages, start, end)
        stage_objs = {n: self.caches.stages.get(state.namespace, n) for n in scope}
        missing = [n for n, obj in stage_objs.items() if obj is None]
        if missing:
            await self._end(
                state, FAILED, REASON_STAGE_NOT_FOUND,
                f"stage(s) {', '.join(missing)} of workflow {workflow_name} not found",
            )
            return None
        if state.status.get("deadline") is None:
            errors = validate_output_references(workflow, stage_objs, spec.get("stages") or [])
            if errors:
                await self._end(state, FAILED, REASON_INVALID, "; ".join(errors))
                return None
            refused = await admission_violations(self.control, state.run, workflow, stage_objs)
            if refused:
                await self._end(state, FAILED, REASON_TENANCY_VIOLATION, describe(refused))
                return None
            if not await self._admit(state, workflow):
                return None
        deadline = state.deadline()
        if deadline is not None and state.now >= deadline:
            await self._end(state, FAILED, REASON_TIMEOUT, "the run exceeded its timeout")
            return None

        target = execution_target(state.run)
        execution = self.caches.execution_cluster(target.cluster)
        if execution is None:
            problem = self.caches.cluster_problem(target.cluster)
            if problem == "":
                return CLUSTER_CONNECT_RECHECK_SECONDS
            if problem is None:
                await self._end(
                    state, FAILED, REASON_CLUSTER_NOT_FOUND,
                    f"execution cluster {target.cluster!r} is not registered",
                )
            else:
                await self._end(
                    state, FAILED, REASON_CLUSTER_UNAVAILABLE,
                    f"execution cluster {target.cluster!r}: {problem}",
                )
            return None
        failing_for, error = execution.unreachable()
        if failing_for >= self.config.cluster_unreachable_seconds:
            await self._end(
                state, FAILED, REASON_CLUSTER_UNAVAILABLE,
                f"execution cluster {target.cluster!r} has not answered for "
                f"{failing_for:.0f}s: {error}",
            )
            return None
        if failing_for > 0:
            return min(CLUSTER_CONNECT_RECHECK_SECONDS,
                       self.config.cluster_unreachable_seconds - failing_for + 0.05)

        for stage_name in scope:
            if state.stage_phase(stage_name) is None:
                state.set_stage(stage_name, PENDING)
        wakeups: list[datetime] = [deadline] if deadline else []
        await self._observe(state, execution, workflow, stage_objs)
        await delegations.take_reported_results(self.control, state,
                                                self.config.system_namespace)
        delegation_deadline = expire_delegations(state)
        if delegation_deadline:
            wakeups.append(delegation_deadline)

        trivial = {s.name for s in wf_stages if s.trivial}
        step = plan_step(wf_stages, state.stages, start, end)
        for name in step.blocked:
            state.set_stage(name, CANCELLED, REASON_UPSTREAM_FAILED, "an upstream stage failed")
        paused = bool(spec.get("paused"))
        if not paused and step.start:
            inputs = await self._inputs(state, workflow, target)
            refused = run_violations(inputs.policy, state.run)
            if refused:
                await self._end(state, FAILED, REASON_TENANCY_VIOLATION, describe(refused))
                return None
            wakeups += await self._start_stages(state, step.start, stage_objs, inputs, execution)
        for node in wf_stages:
            current = state.stages.get(node.name)
            if current is not None and (
                current.get("depends") != list(node.depends)
                or current.get("trivial") != node.trivial
            ):
                entry = state.stage(node.name)
                entry["depends"] = list(node.depends)
                entry["trivial"] = node.trivial
        self._set_overall(state, trivial, paused)
        if is_terminal(state.overall_phase):
            return 0.0
        if not wakeups:
            return None
        return max((min(wakeups) - state.now).total_seconds(), 0.0) + 0.05

    async def _admit(self, state: RunState, workflow: dict) -> bool:
        others = () if self.gate.unlimited else self.caches.runs.list()  # O(runs): only if used
        decision = await self.gate.decide(state.run, others)
        if decision == Admission.REJECT:
            await self._end(
                state, FAILED, REASON_TOO_MANY_WAITING,
                "too many runs are waiting for a parallelism slot",
            )
            return False
        if decision == Admission.QUEUE:
            state.status["queued"] = True
            state.set_overall(PENDING, REASON_QUEUED, "waiting for a parallelism slot")
            return False
        state.status.pop("queued", None)
        default = timedelta(seconds=self.config.default_timeout_seconds)
        try:
            deadline = deadline_for(state.run, state.now, default)
        except ValueError as exc:
            await self._end(state, FAILED, REASON_INVALID, str(exc))
            return False
        state.status["deadline"] = deadline_text(deadline)
        state.set_overall(RUNNING)
        previous_name = state.spec.get("retryOf")
        if previous_name:
            previous = self.caches.runs.get(state.namespace, previous_name)
            if previous is not None:
                reuse_succeeded_stages(state, previous, workflow["metadata"]["name"])
        return True

    async def _observe(
        self, state: RunState, execution: ExecutionCluster, workflow: dict,
        stage_objs: dict[str, dict],
    ) -> None:
        finished_but_running: list[dict] = []
        for name in list(state.stages):
            entry = state.stages[name]
            if (entry.get("status") or {}).get("phase") != RUNNING or not entry.get("pod"):
                continue
            pod_ref = entry["pod"]
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
            observe_pod(state, name, pod, retry_policy(stage_objs.get(name)), events, masker)
            if state.stage_phase(name) != RUNNING and pod_still_running(pod):
                finished_but_running.append(pod_ref)
        if finished_but_running:
            await _delete_pods(execution.cluster, finished_but_running)

    async def _inputs(
        self,
        state: RunState,
        workflow: dict,
        target: ExecutionTarget,
    ) -> StageInputs:
        resources: dict[str, dict] = {}
        resource_types: dict[str, dict] = {}
        for namespace in dict.fromkeys(
            (keys.SYSTEM_NAMESPACE, self.config.system_namespace, state.namespace)
        ):
            for obj in self.caches.resources.list(namespace):
                labels = obj["metadata"].get("labels") or {}
                if keys.LABEL_RESOURCE_TEMPLATE in labels:
                    resource_types[(obj.get("spec") or {}).get("type") or ""] = obj
                elif namespace == state.namespace:
                    resources[obj["metadata"]["name"]] = obj
        project_name = (
            (state.run["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT)
            or (workflow["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT)
        )
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
            policy=await read_policy(self.control, tenant_of(state.namespace), [target.cluster]),
            secrets=await prefetch_secrets(self.control, state.run, workflow, self.caches),
            artifact_upload=await self._artifact_upload(state, project_name, workflow),
        )

    async def _artifact_upload(
        self, state: RunState, project: str | None, workflow: dict
    ) -> ArtifactUpload | None:
        """Where and with which token the run's Http push resolvers upload by default."""
        if not project:
            return None
        if self._upload_key is None:
            try:
                self._upload_key = await delegations.token_key(
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
        wakeups: list[datetime] = []
        to_create: list[str] = []
        for name in names:
            stage_obj = stage_objs[name]
            if (stage_obj.get("spec") or {}).get("delegation"):
                mark_delegation_waiting(
                    state, name, stage_obj, self.config.delegation_timeout_seconds
                )
                continue
            not_before = retry_not_before(state, name, retry_policy(stage_obj))
            not_before = not_before or self._quota_not_before(state, name)
            if not_before is not None and not_before > state.now:
                wakeups.append(not_before)
                continue
            to_create.append(name)

        async def create(name: str) -> None:
            started = await start_pod_stage(
                execution.cluster, state, name, inputs.for_stage(stage_objs[name])
            )
            key = (run_key(state.namespace, state.name), name)
            if started:
                self._quota_failures.pop(key, None)
            elif state.stages[name].get("status", {}).get("reason") == REASON_QUOTA:
                refusals = self._quota_failures.get(key, (0, state.now))[0] + 1
                self._quota_failures[key] = (refusals, state.now)
                wakeups.append(self._quota_not_before(state, name) or state.now)

        async with asyncio.TaskGroup() as group:
            for name in to_create:
                group.create_task(create(name))
        return wakeups

    def _quota_not_before(self, state: RunState, name: str) -> datetime | None:
        """When a stage whose pod the quota refused may ask again: after the last refusal, a
        backoff that doubles with each refusal in a row up to its max. None (now) for a
        refusal this engine has not seen, as before a restart."""
        status = (state.stages.get(name) or {}).get("status") or {}
        if status.get("phase") != PENDING or status.get("reason") != REASON_QUOTA:
            return None
        refused = self._quota_failures.get((run_key(state.namespace, state.name), name))
        if refused is None:
            return None
        refusals, last = refused
        return last + retry_backoff(
            refusals,
            timedelta(seconds=self.config.quota_retry_backoff_seconds),
            timedelta(seconds=self.config.quota_retry_max_backoff_seconds),
        )

    def _set_overall(self, state: RunState, trivial: set[str], paused: bool) -> None:
        phase = overall_phase(state.stages, trivial)
        if is_terminal(phase):
            failed = [
                n for n, e in state.stages.items()
                if (e.get("status") or {}).get("phase") in (FAILED, CANCELLED)
                and n not in trivial and not e.get("trivial")
            ]
            message = f"failed stages: {', '.join(failed)}" if failed else None
            state.set_overall(phase, "StageFailed" if failed else None, message)
            return
        previous = state.overall.get("reason")
        if paused:
            state.set_overall(phase, REASON_MANUALLY_PAUSE, "paused: no new stage starts")
        elif previous in (REASON_MANUALLY_PAUSE, REASON_MANUALLY_RESUME):
            state.set_overall(phase, REASON_MANUALLY_RESUME)
        else:
            state.set_overall(phase)

    async def _end(self, state: RunState, phase: str, reason: str, message: str) -> None:
        """End the run: every unfinished stage gets the same fate, its pod deleted now."""
        doomed = [
            entry["pod"] for name in state.non_terminal_stages()
            if (entry := state.stages[name]).get("pod")
            and (entry.get("status") or {}).get("phase") == RUNNING
        ]
        for name in state.non_terminal_stages():
            started = state.stage_phase(name) not in (None, PENDING)
            state.set_stage(name, phase if started else CANCELLED, reason, message)
        state.set_overall(phase, reason, message)
        if doomed:
            execution = self.caches.execution_cluster(execution_target(state.run).cluster)
            if execution is not None:
                await _delete_pods(execution.cluster, doomed)


async def _delete_pods(cluster: Cluster, pods: list[dict]) -> None:
    for ref in pods:
        try:
            await cluster.delete(kinds.POD, ref["name"], ref.get("namespace"),
                                 grace_period_seconds=0)
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("cannot delete pod %s/%s: %s", ref.get("namespace"), ref["name"], exc)
