"""A stage pod from a Stage, its Workflow and WorkflowRun — plain data, no I/O.

Layout of a stage pod (every container gets ``METADATA_NAMESPACE, WORKFLOW_NAME,
WORKFLOWRUN_NAME, STAGE_NAME``):

- init containers ``csc-pull-<resource>``, one per input resource, in order, then the
  user's own init containers. Each runs the resolver image (the Resource's
  ``spec.resolver``, else its resource type's, else ``cyclone/resolver-<type>:<version>``) as
  ``/entrypoint.sh pull`` in ``/workspace`` with the data at ``/workspace/data`` = the
  data volume at ``workflowruns/<run>/resources/<resource>`` (a persistent resource: its own
  PVC at its ``path``, with ``PULL_POLICY``), and the resource's parameters as env vars:
  its type's defaults, then values its type's ``spec.bind`` takes from the project's
  integration (``resource_integrations``, see ``bindings``), then its own, then the run's
  ``spec.resources[].parameters``. A parameter marked ``required`` still empty fails the
  pod (``StagePodError``).
- the workload: the PodSpec's first container (unnamed → ``c0``). It mounts each input
  resource at ``inputs.resources[].path`` (default ``/workspace/<resource>``), each input
  artifact at its ``path``, each output artifact at its ``path``, and the results volume
  at ``/cyclone/results``; ``terminationMessagePath`` is ``/cyclone/results/__result__``.
- user sidecars: the other containers, named ``wsc-<name>`` (unnamed → ``wsc-c<i>``).
- ``csc-push-<resource>``, one per output resource: the resolver's ``/entrypoint.sh push``
  run once the workload has exited 0 (see below).

Artifacts are directories: an output artifact's ``path`` is mounted from the data volume
at ``workflowruns/<run>/stages/<stage>/artifacts/<name>``, so what the workload writes
under it is stored there directly (no copy, works on any kubelet); an input artifact
(source ``<stage>/<artifact>`` from the workflow's ``stages[].artifacts`` or the Stage's
own ``source``) is that directory mounted at the consumer's ``path``.

Output resources: the workload mounts ``workflowruns/<run>/resources/<resource>`` at the
output's ``path``; its command is wrapped in ``sh -c`` to write its exit code to
``/cyclone/results/__exit__``, which each ``csc-push-*`` container waits for. So a stage
with output resources needs a workload with an explicit ``command`` and a ``sh`` in its
image. The stage's result is the workload's (see ``podstatus``).

Resources of a container: its own, each missing entry filled from the workflow's
``spec.resources``, then from the project's ``spec.quota`` (``requests.cpu``,
``limits.memory``, bare ``cpu`` = request). Service account: the PodSpec's, else the run's
``spec.serviceAccount``, else the default given. Without a PVC the data volume is an
emptyDir: the pod works, but nothing is shared with other stages.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cyclone.api import keys
from cyclone.api.project import Project
from cyclone.api.resource import Resource
from cyclone.api.stage import Stage
from cyclone.api.workflow import Workflow
from cyclone.api.workflowrun import WorkflowRun
from cyclone.engine.core.acceleration import cache_mounts, tool_env
from cyclone.engine.core.bindings import missing_required
from cyclone.engine.core.errors import StagePodError
from cyclone.engine.core.images import IMAGE_TAG, RESOLVER_IMAGE_PREFIX
from cyclone.engine.core.names import dns_label_part, stage_pod_name
from cyclone.engine.core.podresources import (
    RECORD_EXIT_CODE,
    RESOLVER_DATA_DIR,
    RESOLVER_WORKDIR,
    container_name,
    pull_container,
    push_container,
    resolver_image,
    resource_env,
    resource_mount,
)
from cyclone.engine.core.podvolumes import (
    DATA_VOLUME,
    GROUP_SIDECAR,
    GROUP_WORKLOAD,
    RESULTS_VOLUME,
    artifact_data_path,
    data_volume,
    preset_volumes,
    results_volume,
)
from cyclone.engine.core.render import (
    RenderContext,
    SecretLookup,
    global_variables,
    render_value,
    stage_arguments,
)
from cyclone.engine.core.requirements import container_resources, quota_requirements
from cyclone.engine.core.results import RESULT_FILE, RESULTS_DIR

ANNOTATION_ATTEMPT = "stage.cyclone.dev/attempt"
ANNOTATION_CLUSTER = "workflowrun.cyclone.dev/cluster"
WORKLOAD_SIDECAR_PREFIX = "wsc-"
CYCLONE_CONTAINER_PREFIX = "csc-"



@dataclass(frozen=True)
class PodBuildOptions:
    """Engine-wide settings of stage pods."""

    resolver_image_prefix: str = RESOLVER_IMAGE_PREFIX
    resolver_image_tag: str = IMAGE_TAG
    """The tag of ``<resolver_image_prefix><type>``, the resolver of a resource whose type
    names none; empty: no tag."""
    cyclone_container_resources: Mapping[str, Any] | None = None
    """Resources of Cyclone's own containers; None → the same defaults as the workload."""
    fallback_container_resources: Mapping[str, Any] | None = None
    """What Cyclone's own containers get for a request or limit that no default gives, so
    that a ResourceQuota which demands them admits the pod."""


@dataclass
class StagePodContext:
    """Everything a stage pod is built from; the controller reads it, the core decides."""

    stage: Stage
    workflow: Workflow
    run: WorkflowRun
    namespace: str
    now: datetime
    rng: random.Random
    tenant: str = keys.DEFAULT_TENANT
    pvc: str | None = None
    cluster: str | None = None
    attempt: int = 1
    resources: Mapping[str, Resource] = field(default_factory=dict)
    resource_types: Mapping[str, Resource] = field(default_factory=dict)
    project: Project | None = None
    default_service_account: str | None = None
    upstream_outputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    secret_lookup: SecretLookup | None = None
    resource_integrations: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(
        default_factory=dict)
    """Resource name → its bound integration, by type (`bindings.bind_resources`), for
    its type's ``spec.bind``."""
    options: PodBuildOptions = field(default_factory=PodBuildOptions)
    artifact_upload: ArtifactUpload | None = None
    """Where the run's Http push resolvers upload, unless their resource says otherwise."""
    caches: str | None = None
    """The project whose acceleration caches the workload mounts (`acceleration.decide`)."""


@dataclass(frozen=True)
class ArtifactUpload:
    url: str
    token: str


def _with_upload_defaults(resource: Resource, env: list[dict[str, str]],
                          upload: ArtifactUpload | None) -> list[dict[str, str]]:
    """An Http push without URL or TOKEN uploads to the server, with the run's token."""
    if upload is None or resource.spec.type != "Http":
        return env
    given = {item["name"] for item in env if item.get("value")}
    defaults = {"URL": upload.url, "TOKEN": upload.token,
                "ARTIFACT": f"{resource.name}.tar.gz"}
    kept = [item for item in env if item["name"] not in defaults or item["name"] in given]
    return [*kept, *({"name": k, "value": v} for k, v in defaults.items() if k not in given)]


def _integrations_of(ctx: StagePodContext, resource: Resource) -> Mapping[str, Any]:
    return ctx.resource_integrations.get(resource.name, {})


def _check_required(ctx: StagePodContext, resource: Resource, env: list[dict[str, Any]]) -> None:
    problem = missing_required(resource, ctx.resource_types.get(resource.spec.type), env)
    if problem:
        raise StagePodError(ctx.stage.name, problem)


def _label_value(value: str) -> str:
    return dns_label_part(value)[:63].strip("-")


def _base_env(ctx: StagePodContext) -> list[dict[str, str]]:
    return [
        {"name": "METADATA_NAMESPACE", "value": ctx.run.metadata.namespace or ""},
        {"name": "WORKFLOW_NAME", "value": ctx.workflow.name},
        {"name": "WORKFLOWRUN_NAME", "value": ctx.run.name},
        {"name": "STAGE_NAME", "value": ctx.stage.name},
    ]


def _with_env(container: dict[str, Any], env: list[dict[str, Any]]) -> None:
    ours = {item["name"] for item in env}
    kept = [item for item in container.get("env") or [] if item.get("name") not in ours]
    container["env"] = [*copy.deepcopy(env), *kept]


def _mount(stage: str, container: dict[str, Any], mounts: list[dict[str, Any]]) -> None:
    """Add mounts; the same mount twice is kept once, two mounts at one path are an error."""
    merged: list[dict[str, Any]] = list(container.get("volumeMounts") or [])
    by_path = {mount.get("mountPath"): mount for mount in merged}
    for mount in mounts:
        existing = by_path.get(mount["mountPath"])
        if existing == mount:
            continue
        if existing is not None:
            raise StagePodError(
                stage,
                f'container "{container["name"]}": two volumes at {mount["mountPath"]}',
            )
        by_path[mount["mountPath"]] = mount
        merged.append(mount)
    if merged:
        container["volumeMounts"] = merged


def _render_context(ctx: StagePodContext) -> RenderContext:
    variables = global_variables(
        ctx.workflow.spec.global_variables, ctx.run.spec.global_variables
    )
    base = RenderContext(
        stage=ctx.stage.name,
        now=ctx.now,
        rng=ctx.rng,
        variables=variables,
        outputs=ctx.upstream_outputs,
        secret_lookup=ctx.secret_lookup,
    )
    overrides = next(
        (item.parameters for item in ctx.run.spec.stages if item.name == ctx.stage.name), []
    )
    pod = ctx.stage.spec.pod
    declared = pod.inputs.arguments if pod is not None else []
    base.arguments = stage_arguments(ctx.stage.name, declared, overrides, base)
    return base


def _lookup_resource(ctx: StagePodContext, name: str) -> Resource:
    resource = ctx.resources.get(name)
    if resource is None:
        raise StagePodError(ctx.stage.name, f'resource "{name}" not found')
    return resource


def _artifact_source(ctx: StagePodContext, name: str, own_source: str | None) -> tuple[str, str]:
    item = ctx.workflow.stage(ctx.stage.name)
    source = own_source
    if item is not None:
        source = next((a.source for a in item.artifacts if a.name == name and a.source), source)
    if not source or "/" not in source:
        raise StagePodError(
            ctx.stage.name, f'input artifact "{name}" has no source "<stage>/<artifact>"'
        )
    stage, _, artifact = source.partition("/")
    return stage, artifact


def _named_containers(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    named = []
    for index, container in enumerate(containers):
        name = container.get("name") or f"c{index}"
        if index > 0 and not name.startswith(WORKLOAD_SIDECAR_PREFIX):
            name = container_name(WORKLOAD_SIDECAR_PREFIX, name)
        rest = {key: value for key, value in container.items() if key != "name"}
        named.append({"name": name, **rest})
    return named


def _set_resources(container: dict[str, Any], resources: dict[str, Any]) -> None:
    if resources:
        container["resources"] = resources
    else:
        container.pop("resources", None)


def _wrap_for_exit_code(ctx: StagePodContext, workload: dict[str, Any]) -> None:
    command = workload.get("command")
    if not command:
        raise StagePodError(
            ctx.stage.name, "output resources need the workload container to set command"
        )
    workload["command"] = ["sh", "-c", RECORD_EXIT_CODE, "--", *command]
    workload["args"] = list(workload.get("args") or [])


def build_stage_pod(ctx: StagePodContext) -> dict[str, Any]:
    """The v1 Pod of one attempt of a pod stage (see the module doc for its layout)."""
    stage_name = ctx.stage.name
    pod = ctx.stage.spec.pod
    if pod is None:
        raise StagePodError(stage_name, "not a pod stage")
    render = _render_context(ctx)
    spec: dict[str, Any] = render_value(copy.deepcopy(pod.spec), render)
    if not spec.get("containers"):
        raise StagePodError(stage_name, "spec.pod.spec.containers is empty")
    containers = _named_containers(spec["containers"])
    workload, sidecars = containers[0], containers[1:]
    env = _base_env(ctx)
    try:
        presets, preset_mounts = preset_volumes(ctx.run.spec.volumes, ctx.pvc)
    except ValueError as exc:
        raise StagePodError(stage_name, str(exc)) from exc
    volumes: list[dict[str, Any]] = [data_volume(ctx.pvc), results_volume(), *presets]

    workload_mounts: list[dict[str, Any]] = [{"name": RESULTS_VOLUME, "mountPath": RESULTS_DIR}]
    pull_containers: list[dict[str, Any]] = []
    for item in pod.inputs.resources:
        resource = _lookup_resource(ctx, item.name)
        image = resolver_image(resource, ctx.resource_types, ctx.options.resolver_image_prefix,
                               ctx.options.resolver_image_tag)
        env_vars = resource_env(resource, ctx.resource_types, ctx.run, render,
                                _integrations_of(ctx, resource))
        _check_required(ctx, resource, env_vars)
        data = resource_mount(ctx.run.name, resource, RESOLVER_DATA_DIR, volumes)
        pull_containers.append(pull_container(resource, image, env_vars, data))
        path = item.path or f"{RESOLVER_WORKDIR}/{item.name}"
        workload_mounts.append(resource_mount(ctx.run.name, resource, path, volumes))
    for artifact in pod.inputs.artifacts:
        source_stage, source_artifact = _artifact_source(ctx, artifact.name, artifact.source)
        workload_mounts.append(
            {
                "name": DATA_VOLUME,
                "mountPath": artifact.path or f"/cyclone/artifacts/{artifact.name}",
                "subPath": artifact_data_path(ctx.run.name, source_stage, source_artifact),
            }
        )
    for artifact in pod.outputs.artifacts:
        if not artifact.path:
            raise StagePodError(stage_name, f'output artifact "{artifact.name}" has no path')
        workload_mounts.append(
            {
                "name": DATA_VOLUME,
                "mountPath": artifact.path,
                "subPath": artifact_data_path(ctx.run.name, stage_name, artifact.name),
            }
        )
    push_containers: list[dict[str, Any]] = []
    for item in pod.outputs.resources:
        resource = _lookup_resource(ctx, item.name)
        if item.path:
            workload_mounts.append(resource_mount(ctx.run.name, resource, item.path, volumes))
        image = resolver_image(resource, ctx.resource_types, ctx.options.resolver_image_prefix,
                               ctx.options.resolver_image_tag)
        env_vars = _with_upload_defaults(
            resource,
            resource_env(resource, ctx.resource_types, ctx.run, render,
                         _integrations_of(ctx, resource)),
            ctx.artifact_upload,
        )
        _check_required(ctx, resource, env_vars)
        data = resource_mount(ctx.run.name, resource, RESOLVER_DATA_DIR, volumes)
        push_containers.append(push_container(resource, image, env_vars, data))
    if push_containers:
        _wrap_for_exit_code(ctx, workload)

    defaults = [ctx.workflow.spec.resources or {}]
    if ctx.project is not None:
        defaults.append(quota_requirements(ctx.project.spec.quota))
    own_resources = ctx.options.cyclone_container_resources
    cyclone_defaults = [own_resources] if own_resources else [
        *defaults, ctx.options.fallback_container_resources]

    workload["terminationMessagePath"] = RESULT_FILE
    workload_mounts += preset_mounts[GROUP_WORKLOAD]
    if ctx.caches and ctx.pvc:
        taken = [m.get("mountPath") for m in [*(workload.get("volumeMounts") or []),
                                              *workload_mounts]]
        workload_mounts += cache_mounts(ctx.caches, taken)
        workload["env"] = [*(workload.get("env") or []), *tool_env(
            item.get("name") for item in workload.get("env") or [])]
    _mount(stage_name, workload, workload_mounts)
    for container in [workload, *sidecars]:
        _with_env(container, env)
        _set_resources(container, container_resources(container.get("resources"), defaults))
    for sidecar in sidecars:
        _mount(stage_name, sidecar, preset_mounts[GROUP_SIDECAR])
    for own in push_containers:
        _mount(stage_name, own, preset_mounts[GROUP_SIDECAR])
    for own in [*pull_containers, *push_containers]:
        _with_env(own, env)
        _set_resources(own, container_resources(None, cyclone_defaults))
    for init in spec.get("initContainers") or []:
        _with_env(init, env)
        _set_resources(init, container_resources(init.get("resources"), defaults))

    spec["containers"] = [workload, *sidecars, *push_containers]
    if pull_containers or spec.get("initContainers"):
        spec["initContainers"] = [*pull_containers, *(spec.get("initContainers") or [])]
    spec["volumes"] = [*(spec.get("volumes") or []), *volumes]
    spec["restartPolicy"] = "Never"
    service_account = (
        spec.get("serviceAccountName")
        or ctx.run.spec.service_account
        or ctx.default_service_account
    )
    if service_account:
        spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(ctx),
        "spec": spec,
    }


def _project_name(ctx: StagePodContext) -> str | None:
    for labels in (ctx.run.metadata.labels, ctx.workflow.metadata.labels):
        if labels and labels.get(keys.LABEL_PROJECT):
            return labels[keys.LABEL_PROJECT]
    return ctx.project.name if ctx.project is not None else None


def _metadata(ctx: StagePodContext) -> dict[str, Any]:
    pod = ctx.stage.spec.pod
    user_meta = pod.metadata if pod is not None else None
    labels: dict[str, str] = dict((user_meta.labels if user_meta else None) or {})
    labels.update(
        {
            keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
            keys.LABEL_POD_KIND: keys.POD_KIND_WORKLOAD,
            keys.LABEL_WORKFLOW: _label_value(ctx.workflow.name),
            keys.LABEL_WORKFLOWRUN: _label_value(ctx.run.name),
            keys.LABEL_STAGE: _label_value(ctx.stage.name),
            keys.LABEL_TENANT: _label_value(ctx.tenant),
        }
    )
    project = _project_name(ctx)
    if project:
        labels[keys.LABEL_PROJECT] = _label_value(project)
    annotations: dict[str, str] = dict((user_meta.annotations if user_meta else None) or {})
    annotations[keys.ANNOTATION_META_NAMESPACE] = ctx.run.metadata.namespace or ""
    if ctx.run.metadata.uid:
        annotations[keys.ANNOTATION_WORKFLOWRUN_UID] = ctx.run.metadata.uid
    annotations[ANNOTATION_ATTEMPT] = str(ctx.attempt)
    if ctx.cluster:
        annotations[ANNOTATION_CLUSTER] = ctx.cluster
    return {
        "name": stage_pod_name(ctx.workflow.name, ctx.stage.name, ctx.run.name, ctx.attempt,
                               ctx.run.metadata.uid or ""),
        "namespace": ctx.namespace,
        "labels": labels,
        "annotations": annotations,
    }
