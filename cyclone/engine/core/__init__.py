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
from cyclone.engine.core.names import gc_pod_name, stage_pod_name
from cyclone.engine.core.parallelism import (
    Admission,
    ParallelismLimits,
    RunInfo,
    admit_run,
    runs_to_start,
)
from cyclone.engine.core.phases import is_terminal
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
from cyclone.engine.core.retries import RetryDecision, decide_retry, retry_backoff, should_retry
from cyclone.engine.core.status import apply_stage_status, make_status, overall_phase
from cyclone.engine.core.validation import validate_output_references

__all__ = [
    "RESULT_FILE",
    "Admission",
    "DagStage",
    "ParallelismLimits",
    "RenderContext",
    "RenderError",
    "RetryDecision",
    "RunInfo",
    "RunStep",
    "admit_run",
    "apply_stage_status",
    "blocked_stages",
    "decide_retry",
    "gc_pod_name",
    "global_variables",
    "is_terminal",
    "make_status",
    "next_runnable_stages",
    "overall_phase",
    "parse_results",
    "plan_step",
    "render_string",
    "render_value",
    "resolve_generators",
    "retry_backoff",
    "runs_to_start",
    "secret_lookup_from",
    "should_retry",
    "stage_arguments",
    "stage_pod_name",
    "stages_in_scope",
    "upstream_stages",
    "validate_output_references",
]
