"""Workflow: a DAG of stages."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from cyclone.api.common import ArtifactItem, CycloneModel, FreeForm, GlobalVariable
from cyclone.api.meta import CycloneObject


class NotificationPolicy(StrEnum):
    ALWAYS = "Always"
    SUCCESS = "Success"
    FAILURE = "Failure"


class NotificationType(StrEnum):
    EMAIL = "Email"
    SLACK = "Slack"
    WEBHOOK = "Webhook"


class NotificationReceiver(CycloneModel):
    type: NotificationType
    addresses: list[str] = Field(default_factory=list)


class Notification(CycloneModel):
    """Where to report a finished run, and for which outcomes."""

    policy: NotificationPolicy | None = None
    receivers: list[NotificationReceiver] = Field(default_factory=list)


class StageItem(CycloneModel):
    name: str
    depends: list[str] = Field(default_factory=list)
    trivial: bool = Field(default=False, description="Its failure does not fail the run.")
    artifacts: list[ArtifactItem] = Field(
        default_factory=list, description="Input artifacts, source <stage>/<artifact>."
    )


class WorkflowSpec(CycloneModel):
    stages: list[StageItem] = Field(default_factory=list)
    global_variables: list[GlobalVariable] = Field(default_factory=list)
    notification: Notification | None = None
    resources: FreeForm | None = Field(
        default=None, description="core/v1 ResourceRequirements for stage pods."
    )


class Workflow(CycloneObject):
    """A DAG of stages, with its variables and notifications."""

    KIND: ClassVar[str] = "Workflow"
    PLURAL: ClassVar[str] = "workflows"
    SHORT_NAME: ClassVar[str] = "wf"

    spec: WorkflowSpec = Field(default_factory=WorkflowSpec)
    status: FreeForm | None = None

    def stage(self, name: str) -> StageItem | None:
        for item in self.spec.stages:
            if item.name == name:
                return item
        return None
