"""WorkflowTrigger: start runs on a schedule or on SCM events."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from cyclone.api.common import CycloneModel, ParameterItem
from cyclone.api.credentials import CREDENTIAL
from cyclone.api.meta import CycloneObject
from cyclone.api.workflowrun import WorkflowRunSpec


class TriggerType(StrEnum):
    CRON = "Cron"
    SCM = "SCM"
    WEBHOOK = "Webhook"


class ConcurrencyPolicy(StrEnum):
    """What a firing does while a run it started earlier is unfinished."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class CronTrigger(CycloneModel):
    schedule: str = Field(description="5 cron fields, or 6 with seconds first.")
    timezone: str | None = Field(
        default=None, description="Beyond Cyclone v1: IANA zone of the schedule (default UTC)."
    )


class SCMEventPolicy(CycloneModel):
    enabled: bool = False


class SCMPushPolicy(SCMEventPolicy):
    branches: list[str] = Field(default_factory=list)


class SCMPullRequestPolicy(SCMEventPolicy):
    branches: list[str] = Field(default_factory=list)


class SCMPullRequestCommentPolicy(SCMEventPolicy):
    comments: list[str] = Field(default_factory=list)


class SCMPostCommitPolicy(SCMEventPolicy):
    root_url: str | None = Field(default=None, alias="rootURL")
    workflow_url: str | None = Field(default=None, alias="workflowURL")


class SCMTrigger(CycloneModel):
    secret: Annotated[str | None, CREDENTIAL] = Field(
        default=None, description="The SCM integration's secret.")
    repo: str | None = Field(default=None, description="Full repository name, no server.")
    push: SCMPushPolicy | None = None
    tag_release: SCMEventPolicy | None = None
    pull_request: SCMPullRequestPolicy | None = None
    pull_request_comment: SCMPullRequestCommentPolicy | None = None
    post_commit: SCMPostCommitPolicy | None = None


class WorkflowTriggerSpec(WorkflowRunSpec):
    """The trigger's own fields plus the WorkflowRunSpec of the runs it starts, inlined."""

    type: TriggerType
    parameters: list[ParameterItem] = Field(default_factory=list)
    cron: CronTrigger | None = None
    scm: SCMTrigger | None = None
    disabled: bool = False
    concurrency_policy: ConcurrencyPolicy | None = Field(
        default=None, description="Beyond Cyclone v1: Allow (default), Forbid or Replace."
    )
    starting_deadline_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Beyond Cyclone v1: a missed firing later than this is skipped.",
    )


class WorkflowTriggerStatus(CycloneModel):
    count: int = Field(default=0, description="How many runs it has started.")
    last_fire_time: str | None = Field(
        default=None, description="Beyond Cyclone v1: RFC 3339 time of the last firing."
    )


class WorkflowTrigger(CycloneObject):
    """Starts runs of a workflow on a cron schedule or on SCM events."""

    KIND: ClassVar[str] = "WorkflowTrigger"
    PLURAL: ClassVar[str] = "workflowtriggers"
    SHORT_NAME: ClassVar[str] = "wft"

    spec: WorkflowTriggerSpec
    status: WorkflowTriggerStatus | None = None
