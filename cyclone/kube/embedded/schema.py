"""The embedded cluster's check of a Cyclone custom resource against its CRD schema.

A kube-apiserver refuses a custom resource whose fields have the wrong type, miss a
required field, fall outside an enum or below a minimum, and refuses a null where the
schema is not ``nullable`` (after dropping such a null from a field that has one); the
messages here are the apiserver's. Unknown fields are not refused (the apiserver prunes
them, see `cyclone.api.pruning`), and free-form objects are not looked into. As in the
apiserver's messages, a path does not say which item of a list is meant.

An update is checked against the version it replaces: a part of the new object that is
the very object found at the same place in the stored one (what a patch did not touch,
shared copy-on-write) passed when it was stored and is not walked again, so a patch of
one stage entry of a large run checks that entry, not the whole status. Like the
apiserver's validation ratcheting, this lets an unchanged part stay as it was stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from cyclone.api import keys
from cyclone.kube.errors import Invalid
from cyclone.kube.kinds import Kind

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_CHECKED_ROOT_FIELDS = ("spec", "status")
_ABSENT = object()


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    from cyclone.api.crds import render_crds

    return {crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            for crd in render_crds()}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "null"


def _fits(value: Any, wanted: str) -> bool:
    found = _json_type(value)
    return found == wanted or (wanted == "number" and found == "integer")


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool) else repr(value)


def _problems(value: Any, schema: Mapping[str, Any], path: str,
              stored: Any = _ABSENT) -> list[str]:
    if value is stored:
        return []
    if value is None:
        if schema.get("nullable"):
            return []
        wanted = schema.get("type") or "object"
        return [f'{path}: Invalid value: "null": {path} in body must be of type {wanted}: '
                '"null"']
    if schema.get(_INT_OR_STRING):
        if _json_type(value) in ("integer", "string"):
            return []
        return [f'{path}: Invalid value: "{_json_type(value)}": {path} in body must be of '
                f'type integer,string: "{_json_type(value)}"']
    wanted = schema.get("type")
    if wanted and not _fits(value, wanted):
        found = _json_type(value)
        return [f'{path}: Invalid value: "{found}": {path} in body must be of type {wanted}: '
                f'"{found}"']
    found: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_shown(option) for option in schema["enum"])
        found.append(f"{path}: Unsupported value: {_shown(value)}: supported values: "
                     f"{supported}")
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        found.append(f"{path}: Invalid value: {_shown(value)}: {path} in body should be "
                     f"greater than or equal to {schema['minimum']}")
    if isinstance(value, Mapping) and not schema.get(_PRESERVE):
        found += _object_problems(value, schema, path, stored)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        stored_items = {id(item) for item in stored} if isinstance(stored, list) else ()
        for item in value:
            if id(item) not in stored_items:
                found += _problems(item, schema["items"], path)
    return found


def _object_problems(value: Mapping[str, Any], schema: Mapping[str, Any],
                     path: str, stored: Any = _ABSENT) -> list[str]:
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    extra = additional if isinstance(additional, Mapping) else None
    stored_items = stored if isinstance(stored, Mapping) else {}
    found: list[str] = []
    for key, item in value.items():
        was = stored_items.get(key, _ABSENT)
        if was is item:
            continue
        sub = properties.get(key) or extra
        if sub is None or (item is None and not sub.get("nullable") and key in properties):
            continue
        found += _problems(item, sub, f"{path}.{key}" if path else key, was)
    for key in schema.get("required") or ():
        sub = properties.get(key) or extra
        item = value.get(key)
        if key not in value or sub is None or (
                item is None and not sub.get("nullable") and key in properties):
            found.append(f"{path}.{key}: Required value" if path else f"{key}: Required value")
    return found


def check_custom_resource(kind: Kind, obj: Mapping[str, Any],
                          stored: Mapping[str, Any] | None = None) -> None:
    """Raise `Invalid` as a kube-apiserver would when ``obj`` does not fit its CRD schema;
    objects of other groups than Cyclone's pass unchecked. ``stored`` is the version
    ``obj`` replaces, whose parts ``obj`` shares need no second look."""
    if kind.group != keys.GROUP:
        return
    schema = _schemas().get(kind.kind)
    if schema is None:
        return
    root = {key: obj.get(key) for key in _CHECKED_ROOT_FIELDS if key in obj}
    checked = {**schema, "properties": {key: schema["properties"][key]
                                        for key in _CHECKED_ROOT_FIELDS
                                        if key in schema["properties"]}}
    stored_root = {key: stored.get(key) for key in _CHECKED_ROOT_FIELDS
                   if key in stored} if stored is not None else _ABSENT
    problems = _object_problems(root, checked, "", stored_root)
    if not problems:
        return
    name = (obj.get("metadata") or {}).get("name") or ""
    said = problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]"
    raise Invalid(f'{kind.kind}.{kind.group} "{name}" is invalid: {said}',
                  details={"name": name, "group": kind.group, "kind": kind.kind,
                           "causes": [{"message": problem} for problem in problems]})
