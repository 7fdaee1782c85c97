"""Resource: data a stage pulls or pushes (a Git repository, an image, …)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from cyclone.api.common import CycloneModel, FreeForm, ParameterItem
from cyclone.api.meta import CycloneObject

GIT = "Git"
SVN = "Svn"
IMAGE = "Image"
HTTP = "Http"
BUILTIN_RESOURCE_TYPES = (GIT, SVN, IMAGE, HTTP)


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_EXIST = "IfNotExist"


class Operation(StrEnum):
    PULL = "pull"
    PUSH = "push"


class Persistent(CycloneModel):
    """Keep the resource on its own PVC, across runs."""

    pvc: str
    path: str | None = None
    pull_policy: PullPolicy | None = None


class ResourceBinding(CycloneModel):
    """How a resource type fills its parameters from an integration."""

    integration_type: str | None = None
    param_bindings: dict[str, str] | None = Field(
        default=None, description='Parameter name to integration field, e.g. "scm.server".'
    )


class ResourceSpec(CycloneModel):
    type: str = Field(description="Git, Svn, Image, Http, or a user-registered type.")
    resolver: str | None = Field(default=None, description="Image that pulls/pushes it.")
    parameters: list[ParameterItem] = Field(default_factory=list)
    persistent: Persistent | None = None
    operations: list[Operation] | None = Field(
        default=None, description="Resource types only: the operations the resolver supports."
    )
    bind: ResourceBinding | None = None


class Resource(CycloneObject):
    """Data a stage pulls as an input or pushes as an output, resolved by an image."""

    KIND: ClassVar[str] = "Resource"
    PLURAL: ClassVar[str] = "resources"
    SHORT_NAME: ClassVar[str] = "rsc"

    spec: ResourceSpec
    status: FreeForm | None = None

    def parameter(self, name: str) -> str | None:
        """The value of a parameter, or None when it is absent."""
        for item in self.spec.parameters:
            if item.name == name:
                return item.value
        return None
