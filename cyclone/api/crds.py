"""CustomResourceDefinitions of ``cyclone.dev/v1alpha1``, with schemas made from the models.

A pydantic JSON schema is turned into a Kubernetes *structural* schema: every ``$ref`` is
inlined, ``Optional[X]`` becomes ``X`` and every field under ``spec`` and ``status`` is
``nullable`` (a null reads as a field not given, see `nullable_below`), titles and
defaults are dropped, and only embedded free-form objects (a PodSpec, a
kubeconfig) carry ``x-kubernetes-preserve-unknown-fields``. ``metadata`` is left to the
API server as ``type: object``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from cyclone.api import keys
from cyclone.api.cluster import ExecutionCluster
from cyclone.api.meta import CycloneObject
from cyclone.api.project import Project
from cyclone.api.resource import Resource
from cyclone.api.stage import Stage
from cyclone.api.stagechunks import WorkflowRunStages
from cyclone.api.trigger import WorkflowTrigger
from cyclone.api.workflow import Workflow
from cyclone.api.workflowrun import WorkflowRun

CATEGORY = "cyclone"
_DROPPED_KEYS = frozenset({"title", "default", "examples"})
_NULL = {"type": "null"}
_LEADING_KEYS = ("description", "type")


@dataclass(frozen=True)
class CycloneKind:
    """What a CRD says about a kind besides its schema (the table of ``cyclone.kube.kinds``)."""

    model: type[CycloneObject]
    printer_columns: tuple[dict[str, Any], ...] = ()

    @property
    def kind(self) -> str:
        return self.model.KIND


def _column(name: str, json_path: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "jsonPath": json_path, **extra}


AGE_COLUMN = _column("Age", ".metadata.creationTimestamp", "date")

CYCLONE_KINDS: tuple[CycloneKind, ...] = (
    CycloneKind(
        ExecutionCluster,
        (_column("Phase", ".status.phase"), _column("Server", ".spec.credential.server"),
         _column("Message", ".status.message", priority=1), AGE_COLUMN),
    ),
    CycloneKind(
        Project,
        (_column("Workflows", ".status.workflowCount", "integer"), AGE_COLUMN),
    ),
    CycloneKind(Resource, (_column("Type", ".spec.type"), AGE_COLUMN)),
    CycloneKind(
        Stage,
        (
            _column("Delegation", ".spec.delegation.type", priority=1),
            _column("Retries", ".spec.retries", "integer", priority=1),
            AGE_COLUMN,
        ),
    ),
    CycloneKind(Workflow, (AGE_COLUMN,)),
    CycloneKind(
        WorkflowRun,
        (
            _column("Workflow", ".spec.workflowRef.name"),
            _column("Phase", ".status.overall.phase"),
            _column("Reason", ".status.overall.reason", priority=1),
            AGE_COLUMN,
        ),
    ),
    CycloneKind(
        WorkflowRunStages,
        (
            _column("Run", ".spec.run"),
            _column("Index", ".spec.index", "integer"),
            AGE_COLUMN,
        ),
    ),
    CycloneKind(
        WorkflowTrigger,
        (
            _column("Type", ".spec.type"),
            _column("Schedule", ".spec.cron.schedule", priority=1),
            _column("Disabled", ".spec.disabled", "boolean"),
            _column("Count", ".status.count", "integer"),
            AGE_COLUMN,
        ),
    ),
)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        node = {**copy.deepcopy(defs[name]), **siblings}
    return node


def structural_schema(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema node as a Kubernetes structural schema node."""
    node = _resolve(node, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        options = [option for option in node["anyOf"] if option != _NULL]
        if len(options) != 1:
            raise ValueError(f"a union cannot be a structural schema: {node['anyOf']}")
        rest = {key: value for key, value in node.items() if key != "anyOf"}
        node = {**_resolve(options[0], defs), **rest}
        return structural_schema(node, defs)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key == "$defs":
            continue
        if key == "properties":
            result[key] = {name: structural_schema(sub, defs) for name, sub in value.items()}
        elif key == "items":
            result[key] = structural_schema(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                result[key] = structural_schema(value, defs)
        elif key == "anyOf":
            result[key] = [structural_schema(option, defs) for option in value]
        else:
            result[key] = value
    if "properties" in result and "additionalProperties" in result:
        del result["additionalProperties"]
    first = {key: result.pop(key) for key in _LEADING_KEYS if key in result}
    return {**first, **result}


def nullable_below(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with ``nullable: true`` on it and on every field and map value below it.

    Cyclone v1.2's fields are Go values: ``value: ""``, ``depends:`` or ``timeout: ""``
    mean "no value", and Cyclone reads a null as a field not given. Without ``nullable`` a
    kube-apiserver drops such a null, and a v1.20 one built with Go 1.16 or later refuses
    every empty string as a null ("must be of type string: \"null\"")."""
    result = {**node, "nullable": True}
    if "properties" in node:
        result["properties"] = {name: nullable_below(sub)
                                for name, sub in node["properties"].items()}
    if "items" in node:
        result["items"] = _nullable_fields(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        result["additionalProperties"] = nullable_below(node["additionalProperties"])
    return result


def _nullable_fields(node: dict[str, Any]) -> dict[str, Any]:
    """A list's item: itself not nullable (a null item is no item), its fields are."""
    result = nullable_below(node)
    del result["nullable"]
    return result


def object_schema(model: type[CycloneObject]) -> dict[str, Any]:
    """The openAPIV3Schema of a kind; ``spec`` and ``status`` nullable throughout."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.get("$defs", {})
    result = structural_schema(schema, defs)
    properties = result["properties"]
    for name in ("spec", "status"):
        if name in properties:
            properties[name] = nullable_below(properties[name])
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = {"type": "object"}
    return result


def render_crd(entry: CycloneKind) -> dict[str, Any]:
    model = entry.model
    plural = model.PLURAL
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{keys.GROUP}"},
        "spec": {
            "group": keys.GROUP,
            "names": {
                "kind": model.KIND,
                "listKind": f"{model.KIND}List",
                "plural": plural,
                "singular": model.KIND.lower(),
                "shortNames": [model.SHORT_NAME],
                "categories": [CATEGORY],
            },
            "scope": "Namespaced" if model.NAMESPACED else "Cluster",
            "versions": [
                {
                    "name": keys.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": object_schema(model)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in entry.printer_columns],
                }
            ],
        },
    }


def render_crds() -> list[dict[str, Any]]:
    """The CRDs of every Cyclone kind, in a stable order."""
    return [render_crd(entry) for entry in CYCLONE_KINDS]


def render_crds_yaml() -> str:
    """The CRDs as one multi-document YAML stream."""
    return yaml.safe_dump_all(render_crds(), sort_keys=False, width=100)
