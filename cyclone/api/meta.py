"""Object metadata and the base of every ``cyclone.dev/v1alpha1`` object."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from cyclone.api import keys
from cyclone.api.common import CycloneModel, FreeForm


class OwnerReference(CycloneModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(CycloneModel):
    """Kubernetes ``metadata``; fields not named here (managedFields, …) are kept as-is."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[FreeForm] | None = None


class ObjectReference(CycloneModel):
    """A reference to another object (core/v1 ObjectReference)."""

    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    api_version: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class CycloneObject(CycloneModel):
    """An object of ``cyclone.dev/v1alpha1``; subclasses set the class variables."""

    KIND: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""
    SHORT_NAME: ClassVar[str] = ""
    NAMESPACED: ClassVar[bool] = True

    api_version: str = keys.API_VERSION
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    def model_post_init(self, context: Any, /) -> None:
        if not self.kind:
            self.kind = type(self).KIND

    def to_object(self) -> dict[str, Any]:
        """The object with ``apiVersion`` and ``kind`` always present and first."""
        body = super().to_object()
        head = {"apiVersion": body.pop("apiVersion", self.api_version), "kind": self.kind}
        body.pop("kind", None)
        return {**head, **body}

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace
