"""What every SDK object shares: its manifest, checked by the server's own rules, and
references to stage outputs.

Manifests are plain dicts, in the shape `cyclone apply -f` reads; `validated` runs the
server's admission rules (`cyclone.api.validate_object`) over them, so an object the SDK
writes is refused here, naming the field, before anything is sent.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import yaml

from cyclone.api import keys
from cyclone.api.validation import FieldError, validate_object

API_VERSION = keys.API_VERSION

Value = Any
"""A manifest value: a string, an `OutputRef`, or a list/mapping of them."""


class ManifestError(ValueError):
    """An object that the server would refuse; `errors` holds each field and why.

    The message is one line: ``Stage 'build': spec.pod.spec.containers: at least one
    container required``.
    """

    def __init__(self, what: str, errors: Sequence[FieldError]) -> None:
        self.what = what
        self.errors = list(errors)
        super().__init__(f"{what}: " + "; ".join(str(e) for e in self.errors))


@runtime_checkable
class Manifested(Protocol):
    """An SDK object that writes one or more manifests."""

    def manifests(self) -> list[dict[str, Any]]:
        """Its manifests in apply order, each checked by the server's rules."""


class OutputRef:
    """An output of a stage, written as ``${stages.<stage>.outputs.<key>}``.

    It renders to that text wherever it is used (``str``, f-strings, ``+``), and a stage
    whose spec holds it depends on the stage it names (the edge is added when the
    workflow is written, unless that stage is already upstream).
    """

    __slots__ = ("key", "stage")

    def __init__(self, stage: str, key: str) -> None:
        self.stage = stage
        self.key = key

    def __str__(self) -> str:
        return f"${{stages.{self.stage}.outputs.{self.key}}}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"OutputRef({self.stage!r}, {self.key!r})"

    def __add__(self, other: object) -> str:
        return str(self) + str(other)

    def __radd__(self, other: object) -> str:
        return str(other) + str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputRef) and (other.stage, other.key) == (self.stage,
                                                                            self.key)

    def __hash__(self) -> int:
        return hash((self.stage, self.key))


class Outputs:
    """``stage.outputs.<key>`` (or ``stage.outputs["key"]`` for keys that are not Python
    names): the reference to one of the stage's results."""

    __slots__ = ("_stage",)

    def __init__(self, stage: str) -> None:
        self._stage = stage

    def __getattr__(self, key: str) -> OutputRef:
        if key.startswith("__"):
            raise AttributeError(key)
        return OutputRef(self._stage, key)

    def __getitem__(self, key: str) -> OutputRef:
        return OutputRef(self._stage, key)


def plain(value: Value) -> Any:
    """A manifest value with every `OutputRef` written out as text."""
    if isinstance(value, OutputRef):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def compact(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without its None values (empty lists and maps are kept)."""
    return {k: v for k, v in obj.items() if v is not None}


def object_meta(name: str, *, project: str | None = None, labels: Mapping[str, str] | None = None,
                description: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    all_labels = dict(labels or {})
    if project:
        all_labels.setdefault(keys.LABEL_PROJECT, project)
    if all_labels:
        meta["labels"] = all_labels
    if description:
        meta["annotations"] = {keys.ANNOTATION_DESCRIPTION: description}
    return meta


def validated(obj: dict[str, Any], extra: Iterable[FieldError] = ()) -> dict[str, Any]:
    """`obj` when the server's rules accept it; else `ManifestError` naming each field."""
    errors = [*validate_object(obj), *extra]
    if errors:
        name = (obj.get("metadata") or {}).get("name")
        raise ManifestError(f"{obj.get('kind')} {name!r}", errors)
    return obj


def parameters(values: Mapping[str, Value] | None) -> list[dict[str, Any]]:
    """``{"A": "1"}`` as ``[{name: A, value: "1"}]``."""
    return [{"name": k, "value": None if v is None else str(plain(v))}
            for k, v in (values or {}).items()]


def manifests_of(objects: Iterable[Manifested | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The manifests of SDK objects and plain dicts, in the order given, each once."""
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for item in objects:
        for manifest in (item.manifests() if isinstance(item, Manifested)
                         else [copy.deepcopy(dict(item))]):
            key = (str(manifest.get("kind")), str((manifest.get("metadata") or {}).get("name")))
            if key not in seen:
                seen.add(key)
                found.append(manifest)
    return found


def to_yaml(*objects: Manifested | Mapping[str, Any]) -> str:
    """One multi-document YAML text of the objects' manifests (`cyclone apply -f` reads it)."""
    return yaml.safe_dump_all(manifests_of(objects), sort_keys=False,
                              default_flow_style=False)
