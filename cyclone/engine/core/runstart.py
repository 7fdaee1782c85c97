"""What a new WorkflowRun must be before it is written, whichever way it is started (REST
create, retry or rerun, an SCM delivery, a cron firing): the decisions, as plain data.

`cyclone.engine.runstart` reads what these need (the tenant's policy, the workflow) and
turns a `Refusal` into the typed error its caller answers with.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cyclone.api import keys
from cyclone.api.common import Phase
from cyclone.api.validation import validate_object as field_errors
from cyclone.engine.core.dag import scope_problems
from cyclone.engine.core.events import warning_event
from cyclone.engine.core.masking import Masker
from cyclone.engine.core.tenancy import Violation, describe

NEW_RUN_DROPPED_FIELDS = ("stopped", "paused")
"""Flags a run only gets after it exists: a new run (a retry too) starts neither."""
REASON_RUN_REFUSED = "RunRefused"
"""Reason of the Event a trigger gets when a run it started was refused."""
EVENT_MESSAGE_LIMIT = 1024
RETRY = "retry"
RERUN = "rerun"
"""How a finished run is run again: a retry reuses its succeeded stages (``spec.retryOf``),
a rerun runs every stage again."""
STOP_ANNOTATION_PREFIX = keys.ANNOTATION_STOP_REASON.rpartition("/")[0] + "/stop-"
"""Annotations of how a run was asked to stop (reason, message, immediate kill)."""
STAGE_SPECS_LIMIT = 64 * 1024
"""Longest stage-spec record kept whole on a run; past it each spec is kept as a digest."""
REPEATED_NAME_BASE = 50
"""Longest part of a repeated run's name taken from the run it repeats, so that
``-rerun-xxxxx`` still fits in 63 characters."""


@dataclass(frozen=True)
class Refusal:
    """Why a run is not created: ``forbidden`` when it reaches what another tenant or
    Cyclone owns (403), else it is invalid (422); ``causes`` name the fields."""

    message: str
    causes: list[dict[str, str]] = field(default_factory=list)
    forbidden: bool = False
    conflict: bool = False
    """The run's state does not allow what is asked (409), e.g. retrying a succeeded run."""


def new_run(run: Mapping[str, Any], context: Mapping[str, str]) -> dict[str, Any]:
    """The run to write: in ``context``, its completed execution context (what it gives,
    else where the tenant's new runs go), without the flags of a run that exists, and
    with the engine's cleanup finalizer already set, which spares the engine a write per
    run."""
    completed = copy.deepcopy(dict(run))
    spec = completed["spec"] = dict(completed.get("spec") or {})
    for name in NEW_RUN_DROPPED_FIELDS:
        spec.pop(name, None)
    spec["executionContext"] = dict(context)
    meta = completed["metadata"] = dict(completed.get("metadata") or {})
    finalizers = [f for f in meta.get("finalizers") or [] if f != keys.FINALIZER_RUN_CLEANUP]
    meta["finalizers"] = [*finalizers, keys.FINALIZER_RUN_CLEANUP]
    return completed


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def stage_specs_record(workflow: Mapping[str, Any], stages: Iterable[Mapping[str, Any]],
                       masker: Masker | None = None, limit: int = STAGE_SPECS_LIMIT) -> str:
    """The specs of ``workflow``'s stages among ``stages``, as the run records them
    (`keys.ANNOTATION_STAGE_SPECS`): compact JSON by stage name, every string masked by
    ``masker`` (a credential typed into a script stays out of the run, as from its
    outputs); when that is longer than ``limit``, a ``sha256:`` digest of each spec
    instead, which still tells which changed."""
    wanted = {str(entry.get("name") or "")
              for entry in (workflow.get("spec") or {}).get("stages") or []}
    specs = {name: stage.get("spec") or {} for stage in stages
             if (name := str((stage.get("metadata") or {}).get("name") or "")) in wanted}
    if masker:
        specs = masker.mask_strings(specs)
    text = _compact(specs)
    if len(text) <= limit:
        return text
    return _compact({name: "sha256:" + hashlib.sha256(_compact(spec).encode()).hexdigest()
                     for name, spec in specs.items()})


def field_refusal(obj: Mapping[str, Any]) -> Refusal | None:
    """The object's field errors (`cyclone.api.validation`), the first five in the
    message and all of them as causes."""
    problems = field_errors(dict(obj))
    if not problems:
        return None
    head = "; ".join(str(p) for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return Refusal(f"invalid {obj.get('kind', 'object')}: {head}{more}",
                   [{"field": p.path, "message": p.message} for p in problems])


def violations_refusal(what: str, violations: list[Violation]) -> Refusal | None:
    """What crosses the tenant boundary: forbidden when the object reaches what another
    tenant or Cyclone owns, invalid when it only asks for a pod feature the tenant is not
    allowed."""
    if not violations:
        return None
    access = [v for v in violations if v.feature is None]
    return Refusal(f"{what} reaches outside its tenant: {describe(access or violations)}",
                   [{"field": v.field, "message": v.message} for v in violations],
                   forbidden=bool(access))


def scope_refusal(workflow_name: str, workflow: Mapping[str, Any],
                  spec: Mapping[str, Any]) -> Refusal | None:
    """A run that could never start: its workflow has no stages, or ``startStages`` /
    ``endStages`` name stages it does not have."""
    stages: Iterable[Any] = (workflow.get("spec") or {}).get("stages") or []
    problems = scope_problems(stages, spec.get("startStages"), spec.get("endStages"))
    if not problems:
        return None
    head = "; ".join(f"{name}: {message}" for name, message in problems)
    return Refusal(f"invalid WorkflowRun of workflow {workflow_name!r}: {head}",
                   [{"field": f, "message": m} for f, m in problems])


def retry_refusal(run: Mapping[str, Any]) -> Refusal | None:
    """A retry of a succeeded run would reuse every stage and run nothing: refused, with
    the way to run it all again."""
    phase = (((run.get("status") or {}).get("overall")) or {}).get("phase")
    if phase != Phase.SUCCEEDED:
        return None
    name = (run.get("metadata") or {}).get("name")
    return Refusal(f"run {name} succeeded: nothing to retry; use `cyclone rerun {name}`",
                   [{"field": "status.overall.phase", "message": "run succeeded"}],
                   conflict=True)


def _run_state_annotation(key: str) -> bool:
    """An annotation that tells about one run (its alias, how it was stopped, the results
    its delegated stages got), not about what to run: a repeat does not take it over."""
    return (key == keys.ANNOTATION_ALIAS or key.startswith(STOP_ANNOTATION_PREFIX)
            or key.startswith(keys.ANNOTATION_DELEGATION_RESULT_PREFIX))


def repeated_run(run: Mapping[str, Any], how: str, suffix: str) -> dict[str, Any]:
    """The body of a new run of ``run``'s workflow with its spec (parameters, variables,
    scope, execution context), labels and annotations; ``how`` is `RETRY` (it names the old
    run in ``spec.retryOf``, so its succeeded stages are reused) or `RERUN` (every stage
    runs again). Its name is the old one's with ``-{how}-{suffix}``; the annotations that
    tell about the old run alone (`_run_state_annotation`) stay with it."""
    meta = run.get("metadata") or {}
    name = str(meta.get("name") or "")
    spec = copy.deepcopy(dict(run.get("spec") or {}))
    spec.pop("retryOf", None)
    if how == RETRY:
        spec["retryOf"] = name
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if not _run_state_annotation(k)}
    base = name if len(name) <= REPEATED_NAME_BASE else name[:REPEATED_NAME_BASE].rstrip("-")
    return {"metadata": {"name": f"{base}-{how}-{suffix}",
                         "labels": dict(meta.get("labels") or {}),
                         "annotations": annotations},
            "spec": spec}


def refusal_event(trigger: Mapping[str, Any], run_name: str, message: str,
                  now: str) -> dict[str, Any]:
    """The Warning Event that tells, on the trigger, why its run ``run_name`` was not
    created. Named after the run and the trigger's uid, so a repeated attempt finds it
    already there, and a trigger created again under the same name gets its own."""
    meta = trigger.get("metadata") or {}
    return warning_event(
        trigger, f"{run_name}.{meta.get('uid') or 'refused'}", REASON_RUN_REFUSED,
        f"run {run_name} not created: {message}"[:EVENT_MESSAGE_LIMIT], now)
