"""Engine configuration: limits, delays and endpoints the controllers honour."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field, field_validator

from cyclone.api import keys
from cyclone.api.stagechunks import DEFAULT_CHUNK_THRESHOLD
from cyclone.engine.core.images import DEFAULT_RESOLVER_IMAGES, TOOLBOX_IMAGE
from cyclone.engine.core.pending import MAX_PENDING_TIMEOUT_SECONDS
from cyclone.engine.core.serversettings import (
    ENDPOINT_NAME,
    check_endpoint_url,
    check_unique,
)
from cyclone.engine.core.weburl import check_template


class QueueLimits(BaseModel):
    """How many runs may run at once, and how many may wait for a slot."""

    max_running: int | None = Field(default=None, ge=0, description="None: unlimited")
    max_queued: int | None = Field(
        default=None, ge=0, description="runs allowed to wait for a slot; None: unlimited"
    )


class SmtpConfig(BaseModel):
    """Where Email notifications are sent from."""

    host: str = "localhost"
    port: int = 25
    username: str | None = None
    password: str | None = None
    sender: str = "cyclone@localhost"
    starttls: bool = False
    timeout_seconds: float = 10.0


class NotificationEndpoint(BaseModel):
    """A server-wide receiver of every finished run (v1.2's ``notifications``)."""

    name: str = Field(pattern=ENDPOINT_NAME.pattern)
    url: str

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_endpoint_url("url", value)


class EngineConfig(BaseModel):
    """Everything the engine can be tuned with; defaults suit `cyclone up`."""

    default_timeout_seconds: float = 3600.0
    overall: QueueLimits = Field(default_factory=QueueLimits)
    per_workflow: QueueLimits = Field(default_factory=QueueLimits)
    gc_delay_seconds: float = 300.0
    gc_enabled: bool = True
    gc_image: str = TOOLBOX_IMAGE
    resolver_resources: dict = Field(
        default_factory=lambda: {"requests": {"cpu": "50m", "memory": "64Mi"},
                                 "limits": {"cpu": "500m", "memory": "256Mi"}},
        description="Requests and limits of the resolver containers (pull and push) where "
        "neither the workflow's spec.resources nor the project's quota gives one.",
    )
    gc_log_wait_seconds: float = Field(
        default=60.0, ge=0,
        description="How long GC waits, past its delay, for the server to finish storing "
        "the logs of the run's stage pods before it deletes them.",
    )
    gc_resources: dict = Field(
        default_factory=lambda: {"requests": {"cpu": "50m", "memory": "32Mi"},
                                 "limits": {"cpu": "200m", "memory": "128Mi"}},
        description="Requests and limits of the GC pod, so a tenant ResourceQuota that "
        "demands them admits it.",
    )
    max_workflowruns: int = Field(
        default=100, ge=0,
        description="Finished runs kept per workflow; the engine deletes older finished "
        "runs (a Workflow's annotation workflow.cyclone.dev/max-workflowruns overrides "
        "it). 0 keeps every run.",
    )
    cache_limit_fraction: float = Field(
        default=0.5, gt=0, le=1,
        description="Acceleration caches are mounted while the tenant's caches use less than "
        "this share of its PVC's size (as the PVC watchdog last reported it).",
    )
    cache_limit_bytes: int | None = Field(
        default=None, ge=0,
        description="An absolute limit of the tenant's acceleration caches in bytes, used "
        "instead of cache_limit_fraction when set.",
    )
    callback_base_url: str = "http://127.0.0.1:7099"
    web_url_template: str | None = Field(
        default=None,
        description="The link notifications carry, with {tenant}, {project}, {workflow} and "
        "{run}; None: the web UI's run page under callback_base_url.",
    )
    notification_endpoints: list[NotificationEndpoint] = Field(
        default_factory=list,
        description="Every finished run is POSTed to each endpoint (besides a workflow's own "
        "spec.notification), recorded in status.notifications under the endpoint's name.",
    )
    delegation_timeout_seconds: float = 3600.0
    pod_pending_timeout_seconds: float = Field(
        default=300.0, ge=0, le=MAX_PENDING_TIMEOUT_SECONDS,
        description="A stage whose pod has not started this long after it was made (or "
        "after its last init container ended) fails with the reason it waited for: the "
        "scheduler's, the kubelet's (an image that cannot be pulled) or an unbound "
        "claim's. 0: wait forever; at most 30 days (2592000).",
    )
    http_timeout_seconds: float = 10.0
    quota_retry_backoff_seconds: float = 1.0
    quota_retry_max_backoff_seconds: float = 30.0
    default_service_account: str | None = None
    resolver_images: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_RESOLVER_IMAGES))
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    system_namespace: str = Field(
        default=keys.ENGINE_NAMESPACE,
        description="Where the engine keeps its key Secret; never a tenant's namespace "
        "(cyclone-*), so no run or tenant pod can read it.",
    )
    watch_pod_events: bool = Field(
        default=True, description="Copy non-Normal pod events into stage statuses."
    )
    workers: int = Field(default=4, ge=1)
    progress_write_delay_seconds: float = Field(
        default=1.0, ge=0, le=60,
        description="While the engine is behind (runs wait for a worker, or its API "
        "client has spent half its burst), how long it may keep a run's progress "
        "(admitted, stages started, pods running) before writing it to the run, so that a "
        "stage that ends meanwhile costs one status write instead of two. Outcomes (a "
        "stage or the run ending) are written at once; so is everything on an idle engine "
        "or with parallelism limits. 0: write every change at once.",
    )
    stage_chunk_threshold: int = Field(
        default_factory=lambda: int(os.environ.get("CYCLONE_STAGE_CHUNK_THRESHOLD")
                                    or DEFAULT_CHUNK_THRESHOLD),
        ge=1,
        description="A run with more stages than this keeps its stage entries in "
        "WorkflowRunStages objects instead of its own status (decided at its first stage "
        "write, for good); env CYCLONE_STAGE_CHUNK_THRESHOLD.",
    )
    cluster_unreachable_seconds: float = Field(
        default=30.0, gt=0,
        description="How long an execution cluster may fail to answer before the runs "
        "aimed at it fail with ExecutionClusterUnavailable.",
    )
    cluster_status_seconds: float = Field(
        default=5.0, gt=0,
        description="How often the engine looks at its clusters to keep each "
        "ExecutionCluster's status.phase current.",
    )
    watch_execution_clusters: bool = Field(
        default=True,
        description="Run a pod controller in every cluster an ExecutionCluster describes.",
    )

    @field_validator("web_url_template")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        return check_template(value) if value else None

    @field_validator("notification_endpoints")
    @classmethod
    def _unique_endpoints(cls, value: list[NotificationEndpoint]) -> list[NotificationEndpoint]:
        check_unique([e.name for e in value])
        return value

    @field_validator("system_namespace")
    @classmethod
    def _not_a_tenant_namespace(cls, value: str) -> str:
        if keys.is_tenant_namespace(value):
            raise ValueError(f"{value!r} is a tenant's namespace (cyclone-*): the engine's "
                             f"key must live where no tenant reads it, e.g. "
                             f"{keys.ENGINE_NAMESPACE!r}")
        return value
