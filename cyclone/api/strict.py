"""Unknown fields of Cyclone objects, named with their path and the nearest valid name.

Cyclone models keep fields they do not know (``extra="allow"``) so that a stored object
loads and dumps unchanged; admission is where a typo such as ``comand:`` must be refused
instead of silently dropped. `unknown_fields` walks a parsed object: every model under
``spec`` reports the keys it does not declare, and an embedded Kubernetes object (a
stage's ``spec.pod.spec``, a workflow's ``spec.resources``) is checked against the
Kubernetes schema as lightkube's generated models carry it. ``metadata`` stays
permissive, as in Kubernetes, and ``status`` is only written by the engine.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec.inspect as schema
from lightkube.models.core_v1 import PodSpec, ResourceRequirements
from pydantic import BaseModel

from cyclone.api.common import CycloneModel
from cyclone.api.meta import CycloneObject, ObjectMeta

KUBE_OBJECTS: dict[str, dict[str, type]] = {
    "Stage": {"spec.pod.spec": PodSpec},
    "Workflow": {"spec.resources": ResourceRequirements},
}
"""Per kind, the embedded Kubernetes objects (by path) and their lightkube model."""

LENIENT_FIELDS = frozenset({"metadata", "status"})
"""Top-level fields whose unknown keys are kept: Kubernetes metadata, engine-written status."""


@dataclass(frozen=True)
class UnknownField:
    path: str
    """Where the unknown key is, the key included: ``spec.pod.spec.containers[0].comand``."""
    name: str
    suggestion: str | None = None

    @property
    def message(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"unknown field {self.name!r}{hint}"


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The valid name closest to ``name``, when one is close enough to be a typo of it."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if matches:
        return matches[0]
    lowered = {c.lower(): c for c in candidates}
    return lowered.get(name.lower())


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _aliases(model: BaseModel) -> list[str]:
    return [field.alias or name for name, field in type(model).model_fields.items()]


def _model_unknowns(value: Any, path: str, skip: frozenset[str]) -> Iterator[UnknownField]:
    if isinstance(value, CycloneModel) and not isinstance(value, ObjectMeta):
        names = _aliases(value)
        for key in value.model_extra or {}:
            yield UnknownField(_join(path, key), key, nearest(key, names))
        for name, field in type(value).model_fields.items():
            key = field.alias or name
            child = _join(path, key)
            if child in skip or (not path and key in LENIENT_FIELDS):
                continue
            yield from _model_unknowns(getattr(value, name), child, skip)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _model_unknowns(item, _join(path, index), skip)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, BaseModel | list):
                yield from _model_unknowns(item, _join(path, str(key)), skip)


@cache
def _struct_info(model: type) -> schema.StructType:
    info = schema.type_info(model)
    assert isinstance(info, schema.StructType)
    return info


def _kube_unknowns(value: Any, info: schema.Type, path: str) -> Iterator[UnknownField]:
    if isinstance(info, schema.UnionType):
        for option in info.types:
            if not isinstance(option, schema.NoneType):
                yield from _kube_unknowns(value, option, path)
                return
        return
    if isinstance(info, schema.StructType):
        if not isinstance(value, dict):
            return
        fields = {field.encode_name: field.type for field in info.fields}
        for key, item in value.items():
            if key not in fields:
                yield UnknownField(_join(path, key), str(key), nearest(str(key), fields))
            else:
                yield from _kube_unknowns(item, fields[key], _join(path, key))
    elif isinstance(info, schema.ListType) and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _kube_unknowns(item, info.item_type, _join(path, index))
    elif isinstance(info, schema.DictType) and isinstance(value, dict):
        for key, item in value.items():
            yield from _kube_unknowns(item, info.value_type, _join(path, str(key)))


def kube_unknown_fields(value: Any, model: type, path: str = "") -> list[UnknownField]:
    """The keys of ``value`` (a Kubernetes object as JSON) that ``model``'s schema lacks.

    Only names are checked: values may hold Cyclone templates (``{{ arg }}``,
    ``${variables.x}``) that the Kubernetes types would refuse before rendering."""
    return list(_kube_unknowns(value, _struct_info(model), path))


def _at(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def unknown_fields(obj: CycloneObject) -> list[UnknownField]:
    """Every unknown field of ``obj``, in the order of its fields."""
    embedded = KUBE_OBJECTS.get(obj.KIND, {})
    found = list(_model_unknowns(obj, "", frozenset(embedded)))
    data = obj.to_object() if embedded else {}
    for path, model in embedded.items():
        value = _at(data, path)
        if isinstance(value, dict):
            found += kube_unknown_fields(value, model, path)
    return found
