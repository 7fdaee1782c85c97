"""The base of every Cyclone model and the small types several kinds share."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from types import NoneType
from typing import Annotated, Any, Self, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUndefined

from cyclone.api.phases import (  # noqa: F401 (re-exported; defined without pydantic)
    FINISHED_POD_PHASES,
    MAX_PENDING_TIMEOUT_SECONDS,
    REASON_MANUALLY_PAUSE,
    TERMINAL_PHASES,
    Phase,
    PodPhase,
)

FREE_FORM_SCHEMA: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}

FreeForm = Annotated[dict[str, Any], WithJsonSchema(FREE_FORM_SCHEMA)]
"""An embedded object Cyclone keeps whole without modelling it (a PodSpec, a kubeconfig)."""

Quantity = Annotated[int | float | str, WithJsonSchema(QUANTITY_SCHEMA)]
"""A Kubernetes resource quantity: ``2``, ``500m``, ``4Gi``."""


class CycloneModel(BaseModel):
    """camelCase on the wire, unknown fields kept, and dumps that equal what was loaded.

    A field is written out when it was given (even with its default value) or when it
    now differs from its default (a list appended to, a map filled in); a field that was
    neither is left out, so ``Model.from_object(x).to_object() == x``.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_not_given(cls, data: Any) -> Any:
        """A null where the field takes no None (``depends:``, ``parameters: null``) means
        the field was not given, as Go's zero value did in Cyclone v1.2's manifests."""
        if not isinstance(data, dict) or None not in data.values():
            return data
        keys = _keys_without_none(cls)
        return {key: value for key, value in data.items()
                if value is not None or key not in keys}

    @model_serializer(mode="wrap")
    def _omit_untouched_defaults(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        fields_set = self.model_fields_set
        for name, field in type(self).model_fields.items():
            if name in fields_set:
                continue
            key = (field.alias or name) if info.by_alias else name
            if key not in data:
                continue
            if field.default_factory is not None:
                default = field.default_factory()  # type: ignore[call-arg]
            elif field.default is PydanticUndefined:
                continue
            else:
                default = field.default
            if getattr(self, name) == default:
                del data[key]
        return data

    @classmethod
    def from_object(cls, data: dict[str, Any]) -> Self:
        """The model of a plain JSON object (raises ``pydantic.ValidationError``)."""
        return cls.model_validate(data)

    def to_object(self) -> dict[str, Any]:
        """The plain JSON object, camelCase keys, unset defaults left out."""
        return self.model_dump(mode="json", by_alias=True)


@cache
def _keys_without_none(model: type[BaseModel]) -> frozenset[str]:
    """The names and aliases of the fields of ``model`` whose type does not take None."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if annotation is Any or annotation is None or NoneType in get_args(annotation):
            continue
        found.update({name, field.alias or name})
    return frozenset(found)


class Status(CycloneModel):
    """Status of a stage in a run, or of the whole run; ``phase`` is always written out."""

    phase: Phase = Phase.PENDING
    last_transition_time: str | None = Field(
        default=None, description="RFC 3339 time of the last phase change."
    )
    reason: str | None = None
    message: str | None = None
    start_time: str | None = Field(default=None, description="RFC 3339 time the work started.")

    def model_post_init(self, context: Any, /) -> None:
        self.model_fields_set.add("phase")


class ParameterItem(CycloneModel):
    """A named parameter or argument, with its default value."""

    name: str
    value: str | None = None
    description: str | None = None
    required: bool | None = None


class GlobalVariable(CycloneModel):
    """A variable usable as ``${variables.<name>}``; the value may be a generator."""

    name: str
    value: str | None = None


class KeyValue(CycloneModel):
    key: str
    value: str | None = None


def derived_resource_name(resource_type: str | None, path: str | None) -> str | None:
    """The name of a stage's resource declared without one, as Cyclone v1.2 templates
    declare theirs (``{type: Git, path: /workspace}``): the lower-cased type and a slug of
    the path, ``git-workspace``; DNS-safe and at most 63 characters. None without a type."""
    if not resource_type:
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", f"{resource_type}-{path or ''}".lower()).strip("-")
    return slug[:63].rstrip("-") or None


def resource_item_name(item: Mapping[str, Any]) -> str | None:
    """The name of a stage's resource item as stored (a plain dict): its own, else the
    one derived from its type and path (`derived_resource_name`)."""
    return item.get("name") or derived_resource_name(item.get("type"), item.get("path"))


class ResourceItem(CycloneModel):
    """A Resource a stage pulls (input) or pushes (output)."""

    name: str | None = Field(
        default=None,
        description="The Resource's name. Without it (as Cyclone v1.2 templates write "
        "{type: Git, path: /workspace}), the name is the type and the path: git-workspace.",
    )
    type: str | None = None
    path: str | None = Field(
        default=None,
        description="Input: where the resource is mounted in the workload container. "
        "Output: the path whose data is pushed.",
    )

    @model_validator(mode="after")
    def _named_from_type_and_path(self) -> ResourceItem:
        if not self.name:
            self.name = derived_resource_name(self.type, self.path)
        return self


class ArtifactItem(CycloneModel):
    """An artifact; as an input, ``source`` is ``<stage>/<artifact>``."""

    name: str
    path: str | None = None
    source: str | None = None
