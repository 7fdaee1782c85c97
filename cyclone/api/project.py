"""Project: a group of workflows and the defaults they share."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from cyclone.api.common import CycloneModel, Quantity
from cyclone.api.meta import CycloneObject


class IntegrationItem(CycloneModel):
    """The default integration of a type for the project's workflows."""

    type: str
    name: str


class ProjectSpec(CycloneModel):
    integrations: list[IntegrationItem] = Field(default_factory=list)
    quota: dict[str, Quantity] | None = Field(
        default=None, description='Default quota of stage pods, e.g. {"requests.cpu": "2"}.'
    )


class ProjectStatus(CycloneModel):
    workflow_count: int = 0


class Project(CycloneObject):
    """A group of workflows and the defaults they share."""

    KIND: ClassVar[str] = "Project"
    PLURAL: ClassVar[str] = "projects"
    SHORT_NAME: ClassVar[str] = "proj"

    spec: ProjectSpec = Field(default_factory=ProjectSpec)
    status: ProjectStatus | None = None
