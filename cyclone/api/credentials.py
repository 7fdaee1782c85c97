"""Write-only credential fields: declared once on the model, masked in every answer.

A model field annotated ``Annotated[str | None, CREDENTIAL]`` holds a credential (a token,
a password, a private key, a webhook secret…). The functions here walk a plain JSON object
alongside the model class that describes it, so the set of credential fields is derived
from the models and never kept as a second list:

- ``mask_credentials``: the object as an answer shows it, every set credential replaced by
  ``MASK``;
- ``keep_credentials``: an update's object, with every credential it left out or sent as
  ``MASK`` taken from the stored object;
- ``credential_values``: every string a credential field holds (for masking logs and
  outputs).
"""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

MASK = "******"
"""How an answer shows a credential that is set. Sent back in an update, it keeps the value."""

WRITE_ONLY_NOTE = (
    f"Write-only: answers show {MASK!r} when it is set; an update that leaves it out or "
    f"sends {MASK!r} keeps the stored value, and an empty string removes it."
)


class Credential:
    """The marker of a write-only field (use the instance ``CREDENTIAL`` in ``Annotated``)."""

    def __repr__(self) -> str:
        return "CREDENTIAL"


CREDENTIAL = Credential()


@dataclass(frozen=True)
class _Field:
    credential: bool
    models: tuple[type[BaseModel], ...]


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _nested_models(typing.get_args(annotation)[0])
        return
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _nested_models(arg)


@cache
def _fields(model: type[BaseModel]) -> dict[str, _Field]:
    """Wire name → whether it is a credential and the models its value may hold."""
    table: dict[str, _Field] = {}
    for name, info in model.model_fields.items():
        table[info.alias or name] = _Field(
            credential=any(isinstance(m, Credential) for m in info.metadata),
            models=tuple(dict.fromkeys(_nested_models(info.annotation))),
        )
    return table


def _is_set(value: Any) -> bool:
    return value is not None and value != ""


Visit = Callable[[dict, str, tuple[str, ...]], None]


def _walk(model: type[BaseModel], data: Any, visit: Visit, path: tuple[str, ...] = ()) -> None:
    """Call ``visit(parent, key, path)`` for each credential field present in ``data``."""
    if not isinstance(data, dict):
        return
    for key, field in _fields(model).items():
        if key not in data:
            continue
        if field.credential:
            visit(data, key, (*path, key))
            continue
        value = data[key]
        for nested in field.models:
            if isinstance(value, dict):
                _walk(nested, value, visit, (*path, key))
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    _walk(nested, item, visit, (*path, key, str(index)))


def credential_paths(model: type[BaseModel], data: dict) -> list[tuple[str, ...]]:
    """Where ``data`` has a credential field (set or not), as wire-name paths."""
    found: list[tuple[str, ...]] = []
    _walk(model, data, lambda _parent, _key, path: found.append(path))
    return found


def mask_credentials(model: type[BaseModel], data: dict) -> dict:
    """A copy of ``data`` with every set credential shown as ``MASK`` and unset ones left out."""
    out = copy.deepcopy(data)

    def visit(parent: dict, key: str, _path: tuple[str, ...]) -> None:
        if _is_set(parent[key]):
            parent[key] = MASK
        else:
            del parent[key]

    _walk(model, out, visit)
    return out


def _lookup(data: Any, path: tuple[str, ...], names: list[str | None]) -> Any:
    """The value at ``path`` in ``data``; list items are matched by their ``name`` when the
    path's item had one (so reordering a list keeps each item's credential), else by index."""
    for part, name in zip(path, names, strict=True):
        if isinstance(data, list):
            if name is not None:
                data = next((i for i in data if isinstance(i, dict) and i.get("name") == name),
                            None)
            else:
                index = int(part)
                data = data[index] if index < len(data) else None
        elif isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


def _names_along(data: dict, path: tuple[str, ...]) -> list[str | None]:
    names: list[str | None] = []
    node: Any = data
    for part in path:
        if isinstance(node, list):
            node = node[int(part)]
            names.append(node.get("name") if isinstance(node, dict) else None)
        else:
            names.append(None)
            node = node.get(part) if isinstance(node, dict) else None
    return names


def keep_credentials(model: type[BaseModel], new: dict, stored: dict) -> dict:
    """``new`` with each credential it left out, sent as null or sent as ``MASK`` taken
    from ``stored``; one sent as an empty string is removed.

    A ``MASK`` with nothing stored behind it is dropped rather than stored as a value.
    """
    merged = copy.deepcopy(new)
    fills: list[tuple[dict, str, Any]] = []
    removed: list[tuple[dict, str]] = []

    def visit(parent: dict, key: str, path: tuple[str, ...]) -> None:
        if parent[key] == "":
            removed.append((parent, key))
            return
        if _is_set(parent[key]) and parent[key] != MASK:
            return
        old = _lookup(stored, path, _names_along(merged, path))
        fills.append((parent, key, old))

    _walk(model, merged, visit)
    for parent, key, old in fills:
        if _is_set(old) and old != MASK:
            parent[key] = old
        else:
            parent.pop(key, None)
    _fill_absent(model, merged, stored)
    for parent, key in removed:
        parent.pop(key, None)
    return merged


def _fill_absent(model: type[BaseModel], new: Any, stored: Any) -> None:
    """Credentials the update left out entirely (the key absent) keep their stored value."""
    if not isinstance(new, dict) or not isinstance(stored, dict):
        return
    for key, field in _fields(model).items():
        if field.credential:
            if key not in new and _is_set(stored.get(key)) and stored.get(key) != MASK:
                new[key] = copy.deepcopy(stored[key])
            continue
        value, old = new.get(key), stored.get(key)
        for nested in field.models:
            if isinstance(value, dict):
                _fill_absent(nested, value, old)
            elif isinstance(value, list) and isinstance(old, list):
                by_name = {i.get("name"): i for i in old if isinstance(i, dict) and "name" in i}
                for index, item in enumerate(value):
                    if isinstance(item, dict) and "name" in item:
                        _fill_absent(nested, item, by_name.get(item["name"]))
                    elif index < len(old):
                        _fill_absent(nested, item, old[index])


def strings_in(value: Any) -> list[str]:
    """Every string leaf of a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for child in value.values() for s in strings_in(child)]
    if isinstance(value, list):
        return [s for child in value for s in strings_in(child)]
    return []


def credential_values(model: type[BaseModel], data: dict, *, unknown: bool = True) -> list[str]:
    """The value of every credential field of ``data``: its text, or for a structured value
    (a kubeconfig given as an object) its JSON text, whose strings the masking rule takes
    apart.

    With ``unknown``, the strings under keys the models do not declare count too: a stored
    object written before its model was strict may carry a credential under any name.
    """
    found: list[str] = []

    def visit(parent: dict, key: str, _path: tuple[str, ...]) -> None:
        value = parent[key]
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict | list):
            found.append(json.dumps(value))

    _walk(model, data, visit)
    if unknown:
        found.extend(_undeclared_strings(model, data))
    return found


def _undeclared_strings(model: type[BaseModel], data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    table = _fields(model)
    found: list[str] = []
    for key, value in data.items():
        field = table.get(key)
        if field is None:
            found.extend(strings_in(value))
            continue
        for nested in field.models:
            if isinstance(value, dict):
                found.extend(_undeclared_strings(nested, value))
            elif isinstance(value, list):
                for item in value:
                    found.extend(_undeclared_strings(nested, item))
    return found
