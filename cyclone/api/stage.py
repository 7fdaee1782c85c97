"""Stage: one unit of work, a pod or a delegation to an external system."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from cyclone.api.common import (
    ArtifactItem,
    CycloneModel,
    FreeForm,
    ParameterItem,
    ResourceItem,
)
from cyclone.api.meta import CycloneObject


class PodInputs(CycloneModel):
    resources: list[ResourceItem] = Field(default_factory=list)
    arguments: list[ParameterItem] = Field(
        default_factory=list, description="Arguments with defaults, used as {{ name }}."
    )
    artifacts: list[ArtifactItem] = Field(default_factory=list)


class PodOutputs(CycloneModel):
    resources: list[ResourceItem] = Field(default_factory=list)
    artifacts: list[ArtifactItem] = Field(default_factory=list)


class PodWorkloadMeta(CycloneModel):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class PodWorkload(CycloneModel):
    inputs: PodInputs = Field(default_factory=PodInputs)
    outputs: PodOutputs = Field(default_factory=PodOutputs)
    spec: FreeForm = Field(description="A core/v1 PodSpec, kept whole.")
    metadata: PodWorkloadMeta | None = None


class DelegationWorkload(CycloneModel):
    """The engine POSTs the stage, workflow and run to ``url`` and waits for the report."""

    type: str | None = Field(default=None, description="What the external system does.")
    url: str
    config: str | None = Field(default=None, description="Opaque (JSON) configuration.")
    timeout: str | None = Field(
        default=None,
        description="Beyond Cyclone v1: how long to wait for the report (duration, e.g. 30m); "
        "the stage fails with reason Timeout afterwards.",
    )


class StageSpec(CycloneModel):
    """Exactly one of ``pod`` and ``delegation``."""

    pod: PodWorkload | None = None
    delegation: DelegationWorkload | None = None
    retries: int = Field(
        default=0,
        ge=0,
        description="Beyond Cyclone v1: how many times a failed attempt is retried.",
    )
    retry_backoff: str | None = Field(
        default=None,
        description="Beyond Cyclone v1: delay before a retry (duration, e.g. 10s); it doubles "
        "after each failed attempt.",
    )


class Stage(CycloneObject):
    """The smallest unit of a Workflow: a pod workload or a delegation."""

    KIND: ClassVar[str] = "Stage"
    PLURAL: ClassVar[str] = "stages"
    SHORT_NAME: ClassVar[str] = "stg"

    spec: StageSpec = Field(default_factory=StageSpec)
    status: FreeForm | None = None
