"""Resolver containers of a stage pod: pulling input resources, pushing output ones.

Resolver contract: an image whose ``/entrypoint.sh pull|push`` works in ``/workspace``
with the data under ``/workspace/data`` and the resource's parameters as environment
variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cyclone.api.resource import Resource
from cyclone.api.workflowrun import WorkflowRun
from cyclone.engine.core.images import OWN_IMAGE_PULL_POLICY
from cyclone.engine.core.names import dns_label_part
from cyclone.engine.core.podvolumes import (
    DATA_VOLUME,
    RESULTS_VOLUME,
    persistent_volume_name,
    resource_data_path,
)
from cyclone.engine.core.render import RenderContext, render_string
from cyclone.engine.core.results import EXIT_CODE_FILE, RESULTS_DIR

RESOLVER_WORKDIR = "/workspace"
RESOLVER_DATA_DIR = "/workspace/data"

WAIT_AND_PUSH = (
    f"while [ ! -f {EXIT_CODE_FILE} ]; do sleep 1; done; "
    f'if [ "$(cat {EXIT_CODE_FILE})" != 0 ]; then '
    'echo "workload failed: nothing pushed"; exit 0; fi; '
    "exec /entrypoint.sh push"
)
"""Run by ``csc-push-*``: wait for the workload's exit code, push only after a success."""

RECORD_EXIT_CODE = f'"$@"; code=$?; echo "$code" > {EXIT_CODE_FILE}; exit "$code"'
"""Wraps the workload's command (``sh -c`` this ``--`` command…) to record its exit code."""


def container_name(prefix: str, name: str) -> str:
    return (prefix + dns_label_part(name))[:63].rstrip("-")


def resolver_image(
    resource: Resource, resource_types: Mapping[str, Resource], image_prefix: str,
    image_tag: str = "",
) -> str:
    """The Resource's resolver, else its resource type's, else ``<prefix><type>:<tag>``
    (``<prefix><type>`` without a tag)."""
    if resource.spec.resolver:
        return resource.spec.resolver
    template = resource_types.get(resource.spec.type)
    if template is not None and template.spec.resolver:
        return template.spec.resolver
    image = f"{image_prefix}{resource.spec.type.lower()}"
    return f"{image}:{image_tag}" if image_tag else image


def bound_parameters(
    template: Resource | None, integrations: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """Parameters a resource type fills from an integration (``spec.bind``).

    ``integrations`` maps an integration type (``SCM``, ``DockerRegistry``…) to that
    integration's spec as JSON (``{"type": "SCM", "scm": {"server": …}}``); a binding
    ``{"SCM_URL": "scm.server"}`` reads the dotted path from it. Missing values are skipped.
    """
    bind = template.spec.bind if template is not None else None
    if bind is None or not bind.param_bindings:
        return {}
    spec = integrations.get(bind.integration_type or "")
    if spec is None:
        return {}
    values: dict[str, str] = {}
    for param, path in bind.param_bindings.items():
        value: Any = spec
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None and not isinstance(value, (Mapping, list)):
            values[param] = str(value)
    return values


def resource_env(
    resource: Resource,
    resource_types: Mapping[str, Resource],
    run: WorkflowRun,
    render: RenderContext,
    integrations: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, str]]:
    """Parameters as env vars, rendered; later sources win with a non-empty value.

    Sources in order: the resource type's defaults, values bound from an integration, the
    Resource's own parameters, the run's ``spec.resources[].parameters``.
    """
    template = resource_types.get(resource.spec.type)
    sources: list[list[tuple[str, str | None]]] = []
    if template is not None:
        sources.append([(item.name, item.value) for item in template.spec.parameters])
    sources.append(list(bound_parameters(template, integrations or {}).items()))
    sources.append([(item.name, item.value) for item in resource.spec.parameters])
    for config in run.spec.resources:
        if config.name == resource.name:
            sources.append([(item.name, item.value) for item in config.parameters])
    values: dict[str, str] = {}
    for parameters in sources:
        for name, value in parameters:
            if value:
                values[name] = render_string(value, render)
            else:
                values.setdefault(name, "")
    if resource.spec.persistent is not None and resource.spec.persistent.pull_policy:
        values["PULL_POLICY"] = str(resource.spec.persistent.pull_policy.value)
    return [{"name": name, "value": value} for name, value in values.items()]


def resource_mount(
    run: str, resource: Resource, mount_path: str, volumes: list[dict[str, Any]]
) -> dict[str, Any]:
    """The mount of a resource's data; a persistent one adds its own PVC to ``volumes``."""
    persistent = resource.spec.persistent
    if persistent is None:
        return {
            "name": DATA_VOLUME,
            "mountPath": mount_path,
            "subPath": resource_data_path(run, resource.name),
        }
    volume_name = persistent_volume_name(persistent.pvc)
    if all(v["name"] != volume_name for v in volumes):
        volumes.append(
            {"name": volume_name, "persistentVolumeClaim": {"claimName": persistent.pvc}}
        )
    mount = {"name": volume_name, "mountPath": mount_path}
    if persistent.path and persistent.path.strip("/"):
        mount["subPath"] = persistent.path.strip("/")
    return mount


def pull_container(
    resource: Resource, image: str, env: list[dict[str, str]], data_mount: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": container_name("csc-pull-", resource.name),
        "image": image,
        "imagePullPolicy": OWN_IMAGE_PULL_POLICY,
        "command": ["/entrypoint.sh", "pull"],
        "workingDir": RESOLVER_WORKDIR,
        "env": env,
        "volumeMounts": [data_mount],
    }


def push_container(
    resource: Resource, image: str, env: list[dict[str, str]], data_mount: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": container_name("csc-push-", resource.name),
        "image": image,
        "imagePullPolicy": OWN_IMAGE_PULL_POLICY,
        "command": ["sh", "-c", WAIT_AND_PUSH],
        "workingDir": RESOLVER_WORKDIR,
        "env": env,
        "volumeMounts": [data_mount, {"name": RESULTS_VOLUME, "mountPath": RESULTS_DIR}],
    }
