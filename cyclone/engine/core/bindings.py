"""Which integration fills a resource's parameters through its resource type's ``spec.bind``.

A resource type (a Resource labelled ``resource.cyclone.dev/template``) may declare
``spec.bind{integrationType, paramBindings{param: "scm.server"}}``. The integration used for
a Resource of that type is one of the run's project's ``spec.integrations[]`` whose type is
the binding's ``integrationType``:

- the one the Resource names in its annotation ``resource.cyclone.dev/integration``, when
  the project lists it with that type;
- else the first the project lists, and when it lists several of that type the stage is
  told which one was taken (``Binding.note``);
- none: nothing is bound, the Resource's parameters stay as given.

Integrations are only ever those of the run's own tenant (the caller reads them from the
tenant's namespace); a Secret that is not an integration (no ``integration.cyclone.dev/type``
label, no JSON spec) is not one. The Resource's own parameter values win over bound ones
(`podresources.resource_env`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cyclone.api import keys
from cyclone.api.integration import integration_credential_values
from cyclone.api.project import Project
from cyclone.api.resource import Resource

REASON_BINDING = "IntegrationBinding"
ANNOTATION_INTEGRATION = "resource.cyclone.dev/integration"
"""On a Resource: the name of the project's integration its type's binding reads."""
INTEGRATION_DATA_KEY = "integration"
RESOLVER_PREFIX = "csc-"
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


@dataclass(frozen=True)
class Binding:
    """The integration bound to one Resource: its name and spec, and a note for the stage."""

    integration: str | None = None
    spec: Mapping[str, Any] | None = None
    note: str | None = None


def integration_spec(secret: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The spec an integration Secret holds; None for any other Secret."""
    metadata = (secret or {}).get("metadata") or {}
    if keys.LABEL_INTEGRATION_TYPE not in (metadata.get("labels") or {}):
        return None
    raw = ((secret or {}).get("data") or {}).get(INTEGRATION_DATA_KEY)
    if not isinstance(raw, str):
        return None
    try:
        spec = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return spec if isinstance(spec, dict) else None


def integration_names(project: Project | None, integration_type: str) -> list[str]:
    """The project's integrations of one type, in the order it lists them."""
    if project is None:
        return []
    return list(dict.fromkeys(
        item.name for item in project.spec.integrations if item.type == integration_type))


def bind_resource(resource: Resource, resource_type: Resource | None, project: Project | None,
                  integrations: Mapping[str, Mapping[str, Any]]) -> Binding:
    """The integration whose values ``resource_type``'s binding gives ``resource``.

    ``integrations``: integration name → spec, of the run's tenant only (see
    `integration_spec`); a name the project lists that is not in it binds nothing.
    """
    bind = resource_type.spec.bind if resource_type is not None else None
    if bind is None or not bind.param_bindings or not bind.integration_type:
        return Binding()
    listed = integration_names(project, bind.integration_type)
    usable = [name for name in listed if _of_type(integrations.get(name), bind.integration_type)]
    wanted = (resource.metadata.annotations or {}).get(ANNOTATION_INTEGRATION)
    if wanted:
        if wanted in usable:
            return Binding(wanted, integrations[wanted])
        return Binding(note=(
            f'resource "{resource.name}": integration "{wanted}" is not a '
            f"{bind.integration_type} integration of the project; nothing bound"))
    if not usable:
        return Binding()
    chosen = usable[0]
    note = None
    if len(usable) > 1:
        note = (f'resource "{resource.name}": the project has {len(usable)} '
                f"{bind.integration_type} integrations ({', '.join(usable)}); bound "
                f'"{chosen}" (annotation {ANNOTATION_INTEGRATION} names another)')
    return Binding(chosen, integrations[chosen], note)


def _of_type(spec: Mapping[str, Any] | None, integration_type: str) -> bool:
    return spec is not None and spec.get("type") == integration_type


def bind_resources(resources: Iterable[Resource], resource_types: Mapping[str, Resource],
                   project: Project | None, integrations: Mapping[str, Mapping[str, Any]]
                   ) -> tuple[dict[str, dict[str, Mapping[str, Any]]], list[str]]:
    """(resource name → {integration type: spec} for `podresources.bound_parameters`,
    the notes to tell the stage)."""
    bound: dict[str, dict[str, Mapping[str, Any]]] = {}
    notes: list[str] = []
    for resource in resources:
        resource_type = resource_types.get(resource.spec.type)
        binding = bind_resource(resource, resource_type, project, integrations)
        if binding.note:
            notes.append(binding.note)
        if binding.spec is not None and resource_type is not None:
            bound[resource.name] = {
                resource_type.spec.bind.integration_type: binding.spec}  # type: ignore[union-attr,dict-item]
    return bound, notes


def binding_event(pod_name: str, notes: list[str], now: str) -> dict[str, Any] | None:
    """The stage event (``status.stages[s].events[]``) that tells which integration a
    binding took when that was not obvious; None when there is nothing to tell."""
    if not notes:
        return None
    return {"name": pod_name, "reason": REASON_BINDING, "message": "; ".join(notes),
            "lastTimestamp": now, "count": 1}


def missing_required(resource: Resource, resource_type: Resource | None,
                     env: list[dict[str, Any]]) -> str | None:
    """Why a resource cannot be pulled or pushed: a parameter the Resource or its type marks
    ``required`` is still empty after binding; None when every one has a value."""
    given = {item["name"] for item in env if item.get("value") or item.get("valueFrom")}
    declared = [*(resource_type.spec.parameters if resource_type is not None else []),
                *resource.spec.parameters]
    missing = list(dict.fromkeys(p.name for p in declared if p.required and p.name not in given))
    if not missing:
        return None
    bind = resource_type.spec.bind if resource_type is not None else None
    source = (f" or bind it from a {bind.integration_type} integration of the project"
              if bind is not None and bind.integration_type else "")
    return (f'resource "{resource.name}": parameter {", ".join(missing)} is required and has '
            f"no value (set it on the Resource, in the run's spec.resources{source})")


def bound_credentials(bound: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> set[str]:
    """Every credential string of the integrations bound to a stage's resources."""
    return {value for by_type in bound.values() for spec in by_type.values()
            for value in integration_credential_values(dict(spec)) if value}


def credentials_secret_name(pod_name: str) -> str:
    """The Secret holding the bound credentials of one stage pod (one per attempt)."""
    return f"{pod_name}-bound"


def move_credentials(pod: dict[str, Any], credentials: set[str]) -> dict[str, str]:
    """Take every bound credential out of the env of Cyclone's resolver containers (``csc-*``)
    of ``pod``: each such env value becomes a ``secretKeyRef`` to the pod's credentials
    Secret (`credentials_secret_name`), so the pod spec never holds it in clear. Returns
    that Secret's data (key → value); empty when nothing moved."""
    data: dict[str, str] = {}
    if not credentials:
        return data
    secret = credentials_secret_name(pod["metadata"]["name"])
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if not str(container.get("name", "")).startswith(RESOLVER_PREFIX):
            continue
        for item in container.get("env") or []:
            key = f"{container['name']}.{item.get('name')}"
            if item.get("value") in credentials and _SECRET_KEY.fullmatch(key):
                data[key] = item.pop("value")
                item["valueFrom"] = {"secretKeyRef": {"name": secret, "key": key}}
    return data


def credentials_secret(pod: Mapping[str, Any], data: Mapping[str, str]) -> dict[str, Any]:
    """The Secret `move_credentials` points the pod at, in the pod's namespace."""
    labels = pod["metadata"].get("labels") or {}
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": credentials_secret_name(pod["metadata"]["name"]),
            "namespace": pod["metadata"].get("namespace"),
            "labels": {keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
                       **{k: v for k, v in labels.items() if k == keys.LABEL_WORKFLOWRUN}},
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def owned_by(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The patch that makes the credentials Secret go with its pod."""
    meta = pod["metadata"]
    return {"metadata": {"ownerReferences": [{
        "apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}]}}
