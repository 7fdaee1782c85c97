"""Starting a pod stage: its pod built, checked against the tenant boundary and created.

What a start writes when no pod comes of it (a delegation's Waiting, a quota refusal) is
decided in `cyclone.engine.core.stagestart`."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cyclone.api import keys
from cyclone.api.project import Project
from cyclone.api.resource import Resource
from cyclone.api.stage import Stage
from cyclone.api.workflow import Workflow
from cyclone.api.workflowrun import WorkflowRun
from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.versioned import PerVersion
from cyclone.engine.core import acceleration
from cyclone.engine.core.acceleration import NO_CACHES, CacheDecision
from cyclone.engine.core.bindings import (
    bind_resources,
    binding_event,
    bound_credentials,
    credentials_secret,
    integration_spec,
    move_credentials,
    owned_by,
)
from cyclone.engine.core.observing import merge_events
from cyclone.engine.core.phases import FAILED, PENDING, REASON_STAGE_POD_CREATED, RUNNING
from cyclone.engine.core.podbuilder import (
    ArtifactUpload,
    PodBuildOptions,
    StagePodContext,
    build_stage_pod,
)
from cyclone.engine.core.render import SecretLookup
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.stagestart import (
    REASON_QUOTA,
    clear_quota_refusals,
    record_quota_refusal,
    upstream_outputs,
)
from cyclone.engine.core.tenancy import (
    REASON_TENANCY_VIOLATION,
    TenantPolicy,
    Violation,
    describe,
    pod_spec_violations,
    stage_violations,
)
from cyclone.engine.core.timefmt import rfc3339
from cyclone.engine.placement import ExecutionTarget, tenant_of
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, ApiError, Forbidden, NotFound
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

REASON_GENERATE_POD_ERROR = "GeneratePodError"
REASON_CREATE_POD_ERROR = "CreatePodError"
workflow_model_of = PerVersion(Workflow.from_object)
"""A large workflow is parsed once, not on every reconcile of each of its runs."""


@dataclass(frozen=True)
class StageInputs:
    """What building a stage's pod needs besides the run state."""

    workflow: dict
    resources: dict[str, dict]
    resource_types: dict[str, dict]
    project: dict | None
    target: ExecutionTarget
    config: EngineConfig
    secrets: SecretLookup | None = None
    artifact_upload: ArtifactUpload | None = None
    policy: TenantPolicy | None = None
    """What the run's tenant may use; None: no pod feature, only the tenant's own PVC."""
    fresh_policy: Callable[[], Awaitable[TenantPolicy]] | None = None
    """When `policy` comes from a cache: the policy read anew, to confirm a refusal."""
    stage_obj: dict = dataclasses.field(default_factory=dict)
    caches: CacheDecision = NO_CACHES
    """Whether the workload mounts its project's acceleration caches."""
    integrations: dict[str, dict] = dataclasses.field(default_factory=dict)
    """Integration name → spec, of the run's tenant and named by its project (``spec.bind``)."""

    models: dict = dataclasses.field(default_factory=dict)

    def for_stage(self, stage_obj: dict) -> StageInputs:
        return dataclasses.replace(self, stage_obj=stage_obj)

    def workflow_model(self) -> Workflow:
        if "workflow" not in self.models:
            self.models["workflow"] = workflow_model_of(self.workflow)
        return self.models["workflow"]

    def run_model(self, state: RunState) -> WorkflowRun:
        """The run without its status: pods are built from its spec and metadata."""
        if "run" not in self.models:
            self.models["run"] = WorkflowRun.from_object(
                {k: v for k, v in state.run.items() if k != "status"}
            )
        return self.models["run"]

    def upstream_outputs(self, state: RunState) -> Mapping[str, Mapping[str, str]]:
        if "outputs" not in self.models:
            self.models["outputs"] = upstream_outputs(state)
        return self.models["outputs"]

    def resource_models(self, stage: Stage) -> dict[str, Resource]:
        """The Resources the stage pulls or pushes (others are not needed to build it)."""
        pod = stage.spec.pod
        names = (
            {r.name for r in [*pod.inputs.resources, *pod.outputs.resources]} if pod else set()
        )
        return {
            name: Resource.from_object(self.resources[name])
            for name in names if name in self.resources
        }


async def cache_decision(control: Cluster, run: dict, project: str | None,
                         pvc: str | None, config: EngineConfig,
                         now: datetime) -> CacheDecision:
    """Whether the run's pods mount the acceleration caches, from the usage the PVC
    watchdog last reported on the tenant's Namespace; an accelerated run that gets none
    is told so by a Warning Event (reason ``AccelerationSkipped``)."""
    labels = run["metadata"].get("labels")
    if not acceleration.is_accelerated(labels):
        return NO_CACHES
    usage = None
    try:
        tenant = tenant_of(run["metadata"]["namespace"])
        namespace = await control.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
        usage = (namespace["metadata"].get("annotations") or {}).get(
            keys.ANNOTATION_STORAGE_USAGE)
    except ApiError as exc:
        log.warning("cannot read the cache usage of run %s: %s", run["metadata"]["name"], exc)
    decision = acceleration.decide(labels, project, pvc, usage,
                                   limit_bytes=config.cache_limit_bytes,
                                   limit_fraction=config.cache_limit_fraction)
    if decision.message:
        event = acceleration.skipped_event(run, decision.message, rfc3339(now))
        try:
            await control.create(event, namespace=event["metadata"]["namespace"])
        except AlreadyExists:
            pass
        except ApiError as exc:
            log.warning("cannot tell run %s that it got no caches: %s",
                        run["metadata"]["name"], exc)
    return decision


async def project_integrations(control: Cluster, namespace: str,
                               project: dict | None) -> dict[str, dict]:
    """The specs of the integrations a project names, read from the run's own tenant
    namespace only; a name that is no integration Secret there is left out."""
    names = {item.get("name") for item in ((project or {}).get("spec") or {}).get(
        "integrations") or [] if isinstance(item, dict) and item.get("name")}
    found: dict[str, dict] = {}
    for name in sorted(names):
        try:
            spec = integration_spec(await control.get(kinds.SECRET, name, namespace))
        except NotFound:
            continue
        except ApiError as exc:
            log.warning("integration %s/%s not readable for resource bindings: %s",
                        namespace, name, exc)
            continue
        if spec is not None:
            found[name] = spec
    return found


def _bound_secret(pod: dict, credentials: dict[str, str]) -> dict:
    """The pod's bound-credentials Secret, marked with the run's namespace as the pod is,
    so that collecting the run finds it (`gcpod.bound_secrets_of`)."""
    secret = credentials_secret(pod, credentials)
    meta_namespace = (pod["metadata"].get("annotations") or {}).get(
        keys.ANNOTATION_META_NAMESPACE)
    if meta_namespace is not None:
        secret["metadata"]["annotations"] = {keys.ANNOTATION_META_NAMESPACE: meta_namespace}
    return secret


_STORE_ATTEMPTS = 3


async def store_bound_secret(cluster: Cluster, secret: dict) -> None:
    """Create (or, for a pod created before, refresh) a pod's bound-credentials Secret.

    One found already (left by an attempt whose pod was never recorded) must not keep its
    ownerReferences: a gone owner lets the garbage collector delete it under the new pod
    before `_own` names that pod. One with owners is therefore deleted and created anew
    (the collector deletes only the uid it judged, so it cannot take the new one); one
    without is rewritten whole. Should it vanish between two of these steps, it is
    created again."""
    for _ in range(_STORE_ATTEMPTS):
        if await _created_or_rewritten(cluster, secret):
            return
    await cluster.create(secret, namespace=secret["metadata"]["namespace"])


async def _created_or_rewritten(cluster: Cluster, secret: dict) -> bool:
    """False when the Secret found already is gone, or was deleted here, before it could
    be rewritten: it is to be created again."""
    meta = secret["metadata"]
    try:
        await cluster.create(secret, namespace=meta["namespace"])
        return True
    except AlreadyExists:
        pass
    try:
        found = await cluster.get(kinds.SECRET, meta["name"], meta["namespace"])
        if found["metadata"].get("ownerReferences"):
            await cluster.delete(kinds.SECRET, meta["name"], meta["namespace"])
            return False
        await cluster.patch(kinds.SECRET, meta["name"], [
            {"op": "add", "path": "/data", "value": secret["data"]},
            {"op": "add", "path": "/metadata/labels", "value": meta.get("labels") or {}},
            {"op": "add", "path": "/metadata/annotations",
             "value": meta.get("annotations") or {}},
            {"op": "add", "path": "/metadata/ownerReferences", "value": []},
        ], meta["namespace"], patch_type="json")
    except NotFound:
        return False
    return True


async def _forget(cluster: Cluster, secret: dict | None) -> None:
    if secret is None:
        return
    try:
        await cluster.delete(kinds.SECRET, secret["metadata"]["name"],
                             secret["metadata"]["namespace"])
    except ApiError as exc:
        log.warning("cannot delete the unused Secret %s: %s", secret["metadata"]["name"], exc)


async def _own(cluster: Cluster, secret: dict, pod: dict) -> None:
    """Make the pod the owner of its credentials Secret, so they are deleted together."""
    meta = secret["metadata"]
    try:
        if not pod["metadata"].get("uid"):
            pod = await cluster.get(kinds.POD, pod["metadata"]["name"], meta["namespace"])
        await cluster.patch(kinds.SECRET, meta["name"], owned_by(pod), meta["namespace"])
    except ApiError as exc:
        log.warning("Secret %s is not owned by its pod: %s", meta["name"], exc)


def is_quota_refusal(error: ApiError) -> bool:
    """Exceeded quota, or a quota too new for Kubernetes to have counted its usage yet
    ("status unknown for quota"): both pass with time, so the stage waits and retries."""
    return isinstance(error, Forbidden) and (
        "exceeded quota" in error.message or "status unknown for quota" in error.message)


def _pod_violations(policy: TenantPolicy, pod: dict) -> list[Violation]:
    return [Violation(v.field, v.message, v.feature, "pod")
            for v in pod_spec_violations(policy, pod.get("spec"), "spec")]


async def start_pod_stage(
    cluster: Cluster, state: RunState, stage: str, inputs: StageInputs
) -> bool:
    """Create the pod of the stage's next attempt; True when the stage is now Running.

    A refusal for exceeded quota leaves the stage Pending (reason
    ``RetryOnExceededQuotaTimeout``), counted in its status, and returns False; the caller
    retries after a backoff (`stagestart.quota_not_before`). The
    Stage, which may have been edited since the run was admitted, and the pod built from
    it are checked against the tenant boundary first; a violation fails the stage
    (reason ``TenancyViolation``) and nothing is created.
    """
    policy = inputs.policy or TenantPolicy(tenant_of(state.namespace))
    refused = stage_violations(policy, inputs.stage_obj)
    if refused and inputs.fresh_policy is not None:
        policy = await inputs.fresh_policy()
        refused = stage_violations(policy, inputs.stage_obj)
    if refused:
        state.set_stage(stage, FAILED, REASON_TENANCY_VIOLATION, describe(refused))
        return False
    entry = state.stage(stage)
    attempt = int(entry.get("attempts") or 0) + 1
    try:
        stage_model = Stage.from_object(inputs.stage_obj)
        resource_models = inputs.resource_models(stage_model)
        resource_types = {t: Resource.from_object(r) for t, r in inputs.resource_types.items()}
        project = Project.from_object(inputs.project) if inputs.project else None
        bound, binding_notes = bind_resources(
            resource_models.values(), resource_types, project, inputs.integrations)
        context = StagePodContext(
            stage=stage_model,
            workflow=inputs.workflow_model(),
            run=inputs.run_model(state),
            namespace=inputs.target.namespace,
            now=state.now,
            rng=random.Random(f"{state.run['metadata'].get('uid')}/{stage}/{attempt}"),
            tenant=tenant_of(state.namespace),
            pvc=inputs.target.pvc,
            cluster=inputs.target.cluster,
            attempt=attempt,
            resources=resource_models,
            resource_types=resource_types,
            project=project,
            resource_integrations=bound,
            default_service_account=inputs.config.default_service_account,
            upstream_outputs=inputs.upstream_outputs(state),
            secret_lookup=inputs.secrets,
            artifact_upload=inputs.artifact_upload,
            caches=inputs.caches.project,
            options=PodBuildOptions(
                fallback_container_resources=inputs.config.resolver_resources),
        )
        pod = build_stage_pod(context)
    except (ValueError, KeyError, TypeError) as exc:
        state.set_stage(stage, FAILED, REASON_GENERATE_POD_ERROR, str(exc))
        return False
    credentials = move_credentials(pod, bound_credentials(bound))
    refused = _pod_violations(policy, pod)
    if refused and inputs.fresh_policy is not None:
        refused = _pod_violations(await inputs.fresh_policy(), pod)
    if refused:
        state.set_stage(stage, FAILED, REASON_TENANCY_VIOLATION, describe(refused))
        return False
    pod_name = pod["metadata"]["name"]
    secret = _bound_secret(pod, credentials) if credentials else None
    try:
        if secret is not None:
            await store_bound_secret(cluster, secret)
        created = await cluster.create(pod, namespace=inputs.target.namespace)
    except AlreadyExists:
        created = None
    except ApiError as exc:
        await _forget(cluster, secret)
        if is_quota_refusal(exc):
            record_quota_refusal(state, stage)
            state.set_stage(stage, PENDING, REASON_QUOTA, exc.message)
            return False
        state.set_stage(stage, FAILED, REASON_CREATE_POD_ERROR, exc.message)
        return False
    if secret is not None:
        await _own(cluster, secret, created or pod)
    clear_quota_refusals(state, stage)
    event = binding_event(pod_name, binding_notes, rfc3339(state.now))
    if event is not None:
        entry["events"] = merge_events(entry.get("events") or [], [event])
    entry["attempts"] = attempt
    entry["pod"] = {"name": pod_name, "namespace": inputs.target.namespace}
    state.set_stage(stage, RUNNING, REASON_STAGE_POD_CREATED,
                    "; ".join(binding_notes) or None)
    return True
