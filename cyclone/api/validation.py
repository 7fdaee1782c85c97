"""Admission checks of Cyclone objects, with errors that name the offending field.

Pydantic checks shapes and types; the rules here are the ones a schema cannot say: names,
durations, the DAG of a Workflow, exactly one workload per Stage. References to stage
outputs are checked by the engine, which knows the run.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pydantic

from cyclone.api import keys
from cyclone.api.cluster import ExecutionCluster
from cyclone.api.common import CycloneModel
from cyclone.api.formats import (
    DNS1123_LABEL_MAX,
    MAX_TIMEOUT,
    cron_schedule_error,
    dns1123_label_error,
    dns1123_subdomain_error,
    parse_duration,
)
from cyclone.api.integration import ANNOTATION_PROVISIONING, Integration
from cyclone.api.meta import CycloneObject, ObjectMeta
from cyclone.api.project import Project
from cyclone.api.registry import UnknownKind, model_for_kind
from cyclone.api.resource import Resource
from cyclone.api.stage import Stage
from cyclone.api.strict import unknown_fields
from cyclone.api.tenant import Tenant
from cyclone.api.trigger import TriggerType, WorkflowTrigger
from cyclone.api.workflow import Workflow
from cyclone.api.workflowrun import VolumeType, WorkflowRun, WorkflowRunSpec


@dataclass(frozen=True)
class FieldError:
    """One problem, at a JSON path such as ``spec.stages[2].depends[0]``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ValidationFailed(ValueError):
    """An object broke one or more rules; ``errors`` says where and why."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(error) for error in self.errors))


def format_path(location: Iterable[str | int]) -> str:
    """``("spec", "stages", 2, "name")`` as ``spec.stages[2].name``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as ``[a, b, a]`` (a depends on b depends on a), or None.

    Only edges to nodes of the graph count; nodes are explored in the graph's order so
    the answer is stable.
    """
    visiting: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        visiting.append(node)
        on_path.add(node)
        for dep in graph.get(node, []):
            if dep not in graph or dep in done:
                continue
            if dep in on_path:
                return [*visiting[visiting.index(dep) :], dep]
            cycle = visit(dep)
            if cycle:
                return cycle
        visiting.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in graph:
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def _pydantic_errors(error: pydantic.ValidationError, prefix: Sequence[str | int] = ()) -> list[
    FieldError
]:
    found = []
    for item in error.errors(include_url=False):
        location = [*prefix, *item["loc"]]
        message = item["msg"]
        if item["type"] == "missing":
            message = "required"
        found.append(FieldError(format_path(location), message))
    return found


def _check_metadata(meta: ObjectMeta, errors: list[FieldError], *, label: bool = True) -> None:
    if not meta.name:
        if not meta.generate_name:
            errors.append(FieldError("metadata.name", "required (or metadata.generateName)"))
        return
    problem = dns1123_label_error(meta.name) if label else dns1123_subdomain_error(meta.name)
    if problem:
        errors.append(FieldError("metadata.name", problem))


def _check_duration(value: str | None, path: str, errors: list[FieldError],
                    maximum: timedelta = MAX_TIMEOUT) -> None:
    if value is None or not value.strip():
        return
    try:
        parse_duration(value, maximum)
    except ValueError as exc:
        errors.append(FieldError(path, str(exc)))


def _check_unique(names: Iterable[str], path: str, what: str, errors: list[FieldError]) -> None:
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            errors.append(
                FieldError(
                    f"{path}[{index}].name",
                    f"duplicate {what} name {name!r} (also {path}[{seen[name]}])",
                )
            )
        else:
            seen[name] = index


def _check_resource(resource: Resource, errors: list[FieldError]) -> None:
    if not resource.spec.type:
        errors.append(FieldError("spec.type", "required"))
    _check_unique(
        (p.name for p in resource.spec.parameters), "spec.parameters", "parameter", errors
    )


def _check_stage(stage: Stage, errors: list[FieldError]) -> None:
    spec = stage.spec
    if spec.pod is not None and spec.delegation is not None:
        errors.append(FieldError("spec", "exactly one of pod and delegation must be set, got both"))
    elif spec.pod is None and spec.delegation is None:
        errors.append(FieldError("spec", "exactly one of pod and delegation must be set, got none"))
    _check_duration(spec.retry_backoff, "spec.retryBackoff", errors)
    if spec.pod is not None:
        containers = spec.pod.spec.get("containers")
        if not isinstance(containers, list) or not containers:
            errors.append(FieldError("spec.pod.spec.containers", "at least one container required"))
        inputs = spec.pod.inputs
        _check_unique(
            (a.name for a in inputs.arguments), "spec.pod.inputs.arguments", "argument", errors
        )
        _check_unique(
            (r.name for r in inputs.resources), "spec.pod.inputs.resources", "resource", errors
        )
        for where, items in (("inputs", inputs.resources),
                             ("outputs", spec.pod.outputs.resources)):
            for index, item in enumerate(items):
                if not item.name:
                    errors.append(FieldError(f"spec.pod.{where}.resources[{index}].name",
                                             "required when type is not given"))
    if spec.delegation is not None:
        url = spec.delegation.url
        if not re.match(r"^https?://[^/\s]+", url):
            errors.append(FieldError("spec.delegation.url", f"{url!r} is not an http(s) URL"))
        _check_duration(spec.delegation.timeout, "spec.delegation.timeout", errors)


def _check_workflow(workflow: Workflow, errors: list[FieldError]) -> None:
    stages = workflow.spec.stages
    if not stages:
        errors.append(FieldError("spec.stages", "at least one stage required"))
    positions: dict[str, int] = {}
    for index, item in enumerate(stages):
        problem = dns1123_label_error(item.name)
        if problem:
            errors.append(FieldError(f"spec.stages[{index}].name", problem))
        positions.setdefault(item.name, index)
    _check_unique((item.name for item in stages), "spec.stages", "stage", errors)
    for index, item in enumerate(stages):
        for dep_index, dep in enumerate(item.depends):
            if dep not in positions:
                path = f"spec.stages[{index}].depends[{dep_index}]"
                errors.append(FieldError(path, f'unknown stage "{dep}"'))
        for art_index, artifact in enumerate(item.artifacts):
            path = f"spec.stages[{index}].artifacts[{art_index}].source"
            source_stage, slash, source_name = (artifact.source or "").partition("/")
            if not slash or not source_stage or not source_name:
                errors.append(FieldError(path, f"{artifact.source!r} is not <stage>/<artifact>"))
            elif source_stage not in positions:
                errors.append(FieldError(path, f'unknown stage "{source_stage}"'))
    graph: dict[str, list[str]] = {}
    for item in stages:
        graph.setdefault(item.name, []).extend(item.depends)
    cycle = find_cycle(graph)
    if cycle:
        errors.append(
            FieldError(f"spec.stages[{positions[cycle[0]]}].depends", "cycle " + " -> ".join(cycle))
        )
    _check_unique(
        (v.name for v in workflow.spec.global_variables),
        "spec.globalVariables",
        "variable",
        errors,
    )


def _check_run_spec(spec: WorkflowRunSpec, errors: list[FieldError]) -> None:
    _check_duration(spec.timeout, "spec.timeout", errors)
    for index, volume in enumerate(spec.volumes):
        path = f"spec.volumes[{index}]"
        if volume.type == VolumeType.HOST_PATH and not volume.path:
            errors.append(FieldError(f"{path}.path", "required for a HostPath volume"))
        if volume.type in (VolumeType.SECRET, VolumeType.CONFIG_MAP) and not volume.object_name:
            errors.append(FieldError(f"{path}.objectName", f"required for a {volume.type} volume"))
        if not volume.mount_path.startswith("/"):
            errors.append(FieldError(f"{path}.mountPath", "must be an absolute path"))
    if spec.retry_of is not None:
        problem = dns1123_subdomain_error(spec.retry_of)
        if problem:
            errors.append(FieldError("spec.retryOf", problem))


def _check_workflow_run(run: WorkflowRun, errors: list[FieldError]) -> None:
    ref = run.spec.workflow_ref
    if ref is None or not ref.name:
        errors.append(FieldError("spec.workflowRef.name", "required"))
    _check_run_spec(run.spec, errors)


def _check_trigger(trigger: WorkflowTrigger, errors: list[FieldError]) -> None:
    spec = trigger.spec
    if spec.type == TriggerType.CRON:
        if spec.cron is None:
            errors.append(FieldError("spec.cron", "required for a Cron trigger"))
        else:
            problem = cron_schedule_error(spec.cron.schedule)
            if problem:
                errors.append(FieldError("spec.cron.schedule", problem))
            if spec.cron.timezone:
                try:
                    zoneinfo.ZoneInfo(spec.cron.timezone)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    message = f"unknown time zone {spec.cron.timezone!r}"
                    errors.append(FieldError("spec.cron.timezone", message))
    if spec.type == TriggerType.SCM:
        if spec.scm is None:
            errors.append(FieldError("spec.scm", "required for an SCM trigger"))
        elif not spec.scm.repo:
            errors.append(FieldError("spec.scm.repo", "required for an SCM trigger"))
    if spec.workflow_ref is not None and not spec.workflow_ref.name:
        errors.append(FieldError("spec.workflowRef.name", "required"))
    _check_run_spec(spec, errors)


def _check_project(project: Project, errors: list[FieldError]) -> None:
    _check_unique(
        (f"{i.type}/{i.name}" for i in project.spec.integrations),
        "spec.integrations",
        "integration",
        errors,
    )


def _check_cluster(cluster: ExecutionCluster, errors: list[FieldError]) -> None:
    credential = cluster.spec.credential
    if credential.kube_config is None and not credential.server:
        if cluster.name != keys.CONTROL_CLUSTER_NAME:
            errors.append(FieldError("spec.credential", "server or kubeConfig required"))


def _check_tenant_name(meta: ObjectMeta, errors: list[FieldError]) -> None:
    name = meta.name or ""
    if not name and meta.generate_name:
        errors.append(FieldError("metadata.name", "required (a tenant's name is not generated)"))
    namespace = keys.tenant_namespace(name)
    if name and len(namespace) > DNS1123_LABEL_MAX:
        longest = DNS1123_LABEL_MAX - len(keys.tenant_namespace(""))
        errors.append(
            FieldError("metadata.name", f"at most {longest} characters (namespace {namespace!r})")
        )


def _check_integration(integration: Integration, errors: list[FieldError]) -> None:
    if ANNOTATION_PROVISIONING in (integration.metadata.annotations or {}):
        errors.append(FieldError(f"metadata.annotations.{ANNOTATION_PROVISIONING}",
                                 "written by Cyclone only"))
    for path, problem in integration.spec.source_problems():
        errors.append(FieldError(path, problem))


_OBJECT_CHECKS: dict[type[CycloneObject], Callable[[Any, list[FieldError]], None]] = {
    Resource: _check_resource,
    Stage: _check_stage,
    Workflow: _check_workflow,
    WorkflowRun: _check_workflow_run,
    WorkflowTrigger: _check_trigger,
    Project: _check_project,
    ExecutionCluster: _check_cluster,
}


def validate_model(model: CycloneModel) -> list[FieldError]:
    """The rule violations of an already-parsed Cyclone object, Tenant or Integration."""
    errors: list[FieldError] = []
    if isinstance(model, CycloneObject):
        _check_metadata(model.metadata, errors, label=model.NAMESPACED)
        errors.extend(FieldError(u.path, u.message) for u in unknown_fields(model))
        check = _OBJECT_CHECKS.get(type(model))
        if check is not None:
            check(model, errors)
    elif isinstance(model, Tenant):
        _check_metadata(model.metadata, errors)
        _check_tenant_name(model.metadata, errors)
    elif isinstance(model, Integration):
        _check_metadata(model.metadata, errors)
        _check_integration(model, errors)
    return errors


_SERVER_KINDS: dict[str, type[CycloneModel]] = {"Tenant": Tenant, "Integration": Integration}


def validate_object(obj: dict[str, Any]) -> list[FieldError]:
    """Every problem of a Cyclone object (any kind, chosen by ``kind``); empty when valid.

    ``kind: Tenant`` and ``kind: Integration`` select the server-side shapes.
    """
    if not isinstance(obj, dict):
        return [FieldError("", "an object is required")]
    kind = obj.get("kind")
    model_type: type[CycloneModel]
    if kind in _SERVER_KINDS:
        model_type = _SERVER_KINDS[kind]
    else:
        if obj.get("apiVersion") != keys.API_VERSION:
            return [FieldError("apiVersion", f"must be {keys.API_VERSION}")]
        try:
            model_type = model_for_kind(str(kind))
        except UnknownKind:
            return [FieldError("kind", f"unknown Cyclone kind {kind!r}")]
    try:
        model = model_type.model_validate(obj)
    except pydantic.ValidationError as exc:
        return _pydantic_errors(exc)
    return validate_model(model)


def ensure_valid(obj: dict[str, Any]) -> None:
    """Raise ``ValidationFailed`` unless ``validate_object(obj)`` is empty."""
    errors = validate_object(obj)
    if errors:
        raise ValidationFailed(errors)
