"""The pure decision logic of the engine: plain data in, plain data out, no I/O."""

from cyclone.engine.core.dag import (
    DagStage,
    RunStep,
    blocked_stages,
    next_runnable_stages,
    plan_step,
    stages_in_scope,
    upstream_stages,
)
from cyclone.engine.core.errors import StagePodError
from cyclone.engine.core.gcpod import build_gc_pod
from cyclone.engine.core.names import gc_pod_name, stage_pod_name
from cyclone.engine.core.parallelism import (
    Admission,
    ParallelismLimits,
    RunInfo,
    admit_run,
    runs_to_start,
)
from cyclone.engine.core.phases import is_terminal
from cyclone.engine.core.podbuilder import PodBuildOptions, StagePodContext, build_stage_pod
from cyclone.engine.core.podstatus import (
    StageObservation,
    deleted_pod_status,
    observe_stage_pod,
    stage_events,
)
from cyclone.engine.core.render import (
    RenderContext,
    RenderError,
    global_variables,
    render_string,
    render_value,
    resolve_generators,
    secret_lookup_from,
    stage_arguments,
)
from cyclone.engine.core.results import RESULT_FILE, parse_results
from cyclone.engine.core.retries import (
    RetryDecision,
    decide_retry,
    retry_backoff,
    should_retry,
    stage_retry_decision,
)
from cyclone.engine.core.status import apply_stage_status, make_status, overall_phase
from cyclone.engine.core.timeouts import (
    DEFAULT_RUN_TIMEOUT,
    deadline_for,
    deadline_text,
    delegation_deadline,
    is_expired,
    run_timeout,
    stored_deadline,
    time_left,
)
from cyclone.engine.core.validation import validate_output_references

__all__ = [
    "DEFAULT_RUN_TIMEOUT",
    "RESULT_FILE",
    "Admission",
    "DagStage",
    "ParallelismLimits",
    "PodBuildOptions",
    "RenderContext",
    "RenderError",
    "RetryDecision",
    "RunInfo",
    "RunStep",
    "StageObservation",
    "StagePodContext",
    "StagePodError",
    "admit_run",
    "apply_stage_status",
    "blocked_stages",
    "build_gc_pod",
    "build_stage_pod",
    "deadline_for",
    "deadline_text",
    "decide_retry",
    "delegation_deadline",
    "deleted_pod_status",
    "gc_pod_name",
    "global_variables",
    "is_expired",
    "is_terminal",
    "make_status",
    "next_runnable_stages",
    "observe_stage_pod",
    "overall_phase",
    "parse_results",
    "plan_step",
    "render_string",
    "render_value",
    "resolve_generators",
    "retry_backoff",
    "run_timeout",
    "runs_to_start",
    "secret_lookup_from",
    "should_retry",
    "stage_arguments",
    "stage_events",
    "stage_pod_name",
    "stage_retry_decision",
    "stages_in_scope",
    "stored_deadline",
    "time_left",
    "upstream_stages",
    "validate_output_references",
]
