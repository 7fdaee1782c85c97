"""The Cyclone kinds by name, and loading any Cyclone object into its model."""

from __future__ import annotations

from typing import Any

from cyclone.api import keys
from cyclone.api.cluster import ExecutionCluster
from cyclone.api.meta import CycloneObject
from cyclone.api.project import Project
from cyclone.api.resource import Resource
from cyclone.api.stage import Stage
from cyclone.api.trigger import WorkflowTrigger
from cyclone.api.workflow import Workflow
from cyclone.api.workflowrun import WorkflowRun

OBJECT_TYPES: tuple[type[CycloneObject], ...] = (
    ExecutionCluster,
    Project,
    Resource,
    Stage,
    Workflow,
    WorkflowRun,
    WorkflowTrigger,
)
_BY_KIND = {model.KIND: model for model in OBJECT_TYPES}


class UnknownKind(ValueError):
    """The object is not of a ``cyclone.dev/v1alpha1`` kind."""


def model_for_kind(kind: str) -> type[CycloneObject]:
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise UnknownKind(f"unknown Cyclone kind {kind!r}") from None


def load_object(obj: dict[str, Any]) -> CycloneObject:
    """The model of a Cyclone object, chosen by its ``kind``.

    Raises ``UnknownKind`` for another apiVersion or kind and ``pydantic.ValidationError``
    when the object does not fit its model.
    """
    if obj.get("apiVersion") != keys.API_VERSION:
        raise UnknownKind(f"apiVersion must be {keys.API_VERSION}, got {obj.get('apiVersion')!r}")
    return model_for_kind(str(obj.get("kind"))).from_object(obj)
