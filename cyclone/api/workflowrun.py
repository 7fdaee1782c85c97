"""WorkflowRun: one execution of a Workflow, with its parameters and its status."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from cyclone.api.common import CycloneModel, GlobalVariable, KeyValue, ParameterItem, Status
from cyclone.api.meta import CycloneObject, ObjectReference


class VolumeType(StrEnum):
    HOST_PATH = "HostPath"
    PVC = "PVC"
    SECRET = "Secret"
    CONFIG_MAP = "ConfigMap"


class ContainerGroup(StrEnum):
    ALL = "All"
    SIDECAR = "Sidecar"
    WORKLOAD = "Workload"


class PresetVolume(CycloneModel):
    """A volume mounted into the containers of every stage pod of the run."""

    type: VolumeType
    path: str | None = Field(default=None, description="Host path, or path inside the PVC.")
    mount_path: str
    sub_path: str | None = None
    object_name: str | None = Field(
        default=None, description="PVC, Secret or ConfigMap name; a PVC volume without it "
        "mounts the run's own PVC (executionContext.pvc), as in Cyclone v1.2.")
    container_group: ContainerGroup | None = None


class ParameterConfig(CycloneModel):
    """Parameters of one resource or stage, by name."""

    name: str
    parameters: list[ParameterItem] = Field(default_factory=list)


class ExecutionContext(CycloneModel):
    """Where the run's pods go: cluster, namespace and the PVC they share."""

    cluster: str | None = None
    namespace: str | None = None
    pvc: str | None = None


class WorkflowRunSpec(CycloneModel):
    workflow_ref: ObjectReference | None = None
    timeout: str | None = Field(
        default=None, description="Maximum run time (1h30m, 30min, 1H30MIN); has a default."
    )
    start_stages: list[str] = Field(default_factory=list)
    end_stages: list[str] = Field(default_factory=list)
    service_account: str | None = None
    resources: list[ParameterConfig] = Field(default_factory=list)
    stages: list[ParameterConfig] = Field(default_factory=list)
    execution_context: ExecutionContext | None = None
    global_variables: list[GlobalVariable] = Field(default_factory=list)
    volumes: list[PresetVolume] = Field(default_factory=list)
    paused: bool | None = Field(
        default=None, description="Beyond Cyclone v1: while true, no new stage starts."
    )
    stopped: bool | None = Field(
        default=None,
        description="Beyond Cyclone v1: the run is cancelled (reason ManuallyStop).",
    )
    retry_of: str | None = Field(
        default=None,
        description="Beyond Cyclone v1: name of an earlier run of the same workflow whose "
        "Succeeded stages are reused with their outputs.",
    )


class PodInfo(CycloneModel):
    name: str | None = None
    namespace: str | None = None


class StageEvent(CycloneModel):
    """A Kubernetes event about the stage's pod."""

    name: str | None = None
    reason: str | None = None
    message: str | None = None
    last_timestamp: str | None = None
    count: int | None = None


class DelegationStatus(CycloneModel):
    """Beyond Cyclone v1: where a delegation was sent and until when it may report."""

    url: str | None = None
    deadline: str | None = Field(default=None, description="RFC 3339 time.")
    sent: bool | None = Field(
        default=None, description="Whether the request has been POSTed: the engine sends "
        "it once the Waiting status is stored, and records that here.")


class StageStatus(CycloneModel):
    pod: PodInfo | None = None
    status: Status = Field(default_factory=Status)
    outputs: list[KeyValue] = Field(default_factory=list)
    depends: list[str] = Field(default_factory=list)
    trivial: bool = False
    events: list[StageEvent] = Field(default_factory=list)
    attempts: int = Field(
        default=0, ge=0, description="Beyond Cyclone v1: attempts started so far."
    )
    delegation: DelegationStatus | None = Field(
        default=None, description="Beyond Cyclone v1: state of a delegation stage."
    )
    quota_refusals: int | None = Field(
        default=None, ge=0, description="Beyond Cyclone v1: refusals in a row of the stage's "
        "pod for exceeded quota; the next try waits a backoff that doubles with each.")
    last_quota_refusal_time: str | None = Field(
        default=None, description="Beyond Cyclone v1: RFC 3339 time (to the microsecond) of "
        "the last of those refusals.")


class StageChunkRecord(CycloneModel):
    """Beyond Cyclone v1: in a large run's status, where its stage entries are stored."""

    count: int = Field(ge=1, description="Number of WorkflowRunStages objects that hold the "
                       "run's stage entries, named <run>-stages-<index>; fixed for the run.")


class NotificationResult(CycloneModel):
    result: str | None = None
    message: str | None = None


class WorkflowRunStatus(CycloneModel):
    stages: dict[str, StageStatus] = Field(default_factory=dict)
    overall: Status = Field(default_factory=Status)
    cleaned: bool = Field(default=False, description="GC has removed the run's pods and data.")
    data_removed: bool | None = Field(
        default=None, description="Beyond Cyclone v1: the GC pod has removed the run's data; "
        "it is deleted next, then cleaned is set.")
    notifications: dict[str, NotificationResult] = Field(
        default_factory=dict, description="Result per notification endpoint."
    )
    deadline: str | None = Field(
        default=None,
        description="Beyond Cyclone v1: RFC 3339 time the run times out, computed from "
        "spec.timeout when it starts.",
    )
    queued: bool | None = Field(
        default=None, description="Beyond Cyclone v1: waiting for a parallelism slot."
    )
    completion_time: str | None = Field(
        default=None, description="Beyond Cyclone v1: RFC 3339 time the run ended."
    )
    stage_chunks: StageChunkRecord | None = Field(
        default=None, description="Beyond Cyclone v1: set on a run with more stages than the "
        "engine keeps in the run itself; its stage entries are then in WorkflowRunStages "
        "objects and `stages` is empty in the stored run (the API fills it in).")
    stage_counts: dict[str, int] | None = Field(
        default=None, description="Beyond Cyclone v1: stages per phase of a run whose stages "
        "are stored in WorkflowRunStages objects.")


class WorkflowRun(CycloneObject):
    """One execution of a Workflow: its parameters and its status."""

    KIND: ClassVar[str] = "WorkflowRun"
    PLURAL: ClassVar[str] = "workflowruns"
    SHORT_NAME: ClassVar[str] = "wfr"

    spec: WorkflowRunSpec = Field(default_factory=WorkflowRunSpec)
    status: WorkflowRunStatus | None = None
