"""The run-level rules of one reconcile: whether the run's execution cluster can be used,
which stages start now and which wait, the bookkeeping of stage entries, how a run ends,
its overall phase, reason and message, and when to look at it again.

Plain data in, `RunState` edits out: the run controller reads its caches, calls these and
writes what they decided.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cyclone.api.common import REASON_MANUALLY_PAUSE
from cyclone.api.validation import validate_object
from cyclone.engine.core.dag import DagStage
from cyclone.engine.core.observing import retry_not_before, retry_policy
from cyclone.engine.core.phases import (
    CANCELLED,
    FAILED,
    PENDING,
    REASON_TIMEOUT,
    REASON_UPSTREAM_FAILED,
    RUNNING,
    is_terminal,
)
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.stagestart import quota_not_before
from cyclone.engine.core.status import overall_phase
from cyclone.engine.core.timeouts import deadline_text

REASON_WORKFLOW_NOT_FOUND = "WorkflowNotFound"
REASON_STAGE_NOT_FOUND = "StageNotFound"
REASON_INVALID = "InvalidWorkflowRun"
REASON_MANUALLY_RESUME = "ManuallyResume"
REASON_QUEUED = "Queued"
REASON_STAGE_FAILED = "StageFailed"
REASON_CLUSTER_NOT_FOUND = "ExecutionClusterNotFound"
REASON_CLUSTER_UNAVAILABLE = "ExecutionClusterUnavailable"
CLUSTER_CONNECT_RECHECK_SECONDS = 1.0
WAKEUP_MARGIN_SECONDS = 0.05
"""Added to a requeue delay so the next look comes just after the moment, not before."""


Failure = tuple[str, str]
"""(reason, message) a run fails with."""


def workflow_missing(namespace: str, workflow_name: str | None) -> Failure:
    return REASON_WORKFLOW_NOT_FOUND, f"workflow {workflow_name!r} not found in {namespace}"


def scope_failure(problems: Iterable[tuple[str, str]]) -> Failure | None:
    """The run's ``startStages``/``endStages`` problems (`dag.scope_problems`) as one."""
    text = "; ".join(f"{field_name}: {message}" for field_name, message in problems)
    return (REASON_INVALID, text) if text else None


def stages_missing(workflow_name: str | None, stage_objs: Mapping[str, dict | None]
                   ) -> Failure | None:
    """A stage of the run's sub-graph that has no Stage object fails the run."""
    missing = [name for name, obj in stage_objs.items() if obj is None]
    if not missing:
        return None
    return (REASON_STAGE_NOT_FOUND,
            f"stage(s) {', '.join(missing)} of workflow {workflow_name} not found")


def invalid_objects(workflow: Mapping[str, Any], stage_objs: Mapping[str, Mapping[str, Any]]
                    ) -> Failure | None:
    """A workflow or stage the API would refuse (an unknown field, a stage without a
    workload…) fails the run, naming the object and field: objects written straight to
    the cluster (kubectl) are not checked before."""
    problems: list[str] = []
    named = [(f"workflow {(workflow.get('metadata') or {}).get('name')}", workflow)]
    named += [(f"stage {name}", obj) for name, obj in stage_objs.items()]
    for what, obj in named:
        problems += [f"{what}: {error}" for error in validate_object(dict(obj))]
    return (REASON_INVALID, listed(problems)) if problems else None


def invalid_references(errors: Iterable[str]) -> Failure | None:
    """Output references that name no upstream output (`validation`) fail the run."""
    text = listed(list(errors))
    return (REASON_INVALID, text) if text else None


PROBLEMS_LISTED = 5
"""How many problems of a refused definition a run's message names."""


def listed(problems: list[str]) -> str:
    """The first problems, each cut to `STAGE_MESSAGE_LIMIT`, and how many more there are:
    the text comes from tenant-written objects and is copied into every stage's status,
    which must stay far below what the API server stores."""
    shown = [p if len(p) <= STAGE_MESSAGE_LIMIT else p[:STAGE_MESSAGE_LIMIT - 1] + "…"
             for p in problems[:PROBLEMS_LISTED]]
    more = len(problems) - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more else "")


def timed_out(state: RunState) -> Failure | None:
    """An admitted run fails at its stored deadline."""
    deadline = state.deadline()
    if deadline is not None and state.now >= deadline:
        return REASON_TIMEOUT, "the run exceeded its timeout"
    return None


def cancel_blocked(state: RunState, names: Iterable[str]) -> None:
    """Stages an upstream failure keeps from ever running (`dag.plan_step`) are Cancelled."""
    for name in names:
        state.set_stage(name, CANCELLED, REASON_UPSTREAM_FAILED, "an upstream stage failed")


def stages_to_observe(state: RunState, running: Iterable[str] | None = None) -> list[str]:
    """The Running stages with a pod: what their pods say is folded in. ``running``: the
    names of the Running entries when known (`RunBook.in_phase`), so only those are read."""
    names = state.stages if running is None else running
    stages = state.stages
    return [name for name in names
            if (entry := stages.get(name)) is not None
            and (entry.get("status") or {}).get("phase") == RUNNING and entry.get("pod")]


@dataclass(frozen=True)
class ClusterVerdict:
    """Whether a run may go on with its execution cluster now.

    ``failure`` (reason, message): the run fails. ``recheck``: look again after that many
    seconds and do nothing else now. Neither: the cluster is usable."""

    failure: tuple[str, str] | None = None
    recheck: float | None = None

    @property
    def usable(self) -> bool:
        return self.failure is None and self.recheck is None


def cluster_verdict(
    name: str,
    *,
    connected: bool,
    problem: str | None = None,
    failing_for: float = 0.0,
    error: str | None = None,
    unreachable_limit: float,
) -> ClusterVerdict:
    """The availability of the execution cluster ``name``.

    Not ``connected`` (the engine has no cache of it): ``problem`` says why — "" while it
    is being connected (look again soon), None when it is not registered at all, a message
    when it cannot be used. Connected: a pod cache that has failed to reach it for
    ``failing_for`` seconds fails the run at ``unreachable_limit`` and is looked at again
    until then."""
    if not connected:
        if problem == "":
            return ClusterVerdict(recheck=CLUSTER_CONNECT_RECHECK_SECONDS)
        if problem is None:
            return ClusterVerdict(failure=(
                REASON_CLUSTER_NOT_FOUND, f"execution cluster {name!r} is not registered"))
        return ClusterVerdict(failure=(
            REASON_CLUSTER_UNAVAILABLE, f"execution cluster {name!r}: {problem}"))
    if failing_for >= unreachable_limit:
        return ClusterVerdict(failure=(
            REASON_CLUSTER_UNAVAILABLE,
            f"execution cluster {name!r} has not answered for {failing_for:.0f}s: {error}"))
    if failing_for > 0:
        return ClusterVerdict(recheck=min(
            CLUSTER_CONNECT_RECHECK_SECONDS,
            unreachable_limit - failing_for + WAKEUP_MARGIN_SECONDS))
    return ClusterVerdict()


def mark_queued(state: RunState) -> None:
    """The run waits for a parallelism slot."""
    state.status["queued"] = True
    state.set_overall(PENDING, REASON_QUEUED, "waiting for a parallelism slot")


def mark_admitted(state: RunState, deadline: datetime) -> None:
    """The run starts now and times out at ``deadline``."""
    state.status.pop("queued", None)
    state.status["deadline"] = deadline_text(deadline)
    state.set_overall(RUNNING)


def enter_scope(state: RunState, scope: Iterable[str]) -> None:
    """Every stage of the run's sub-graph has an entry (Pending until it starts)."""
    for name in scope:
        if state.stage_phase(name) is None:
            state.set_stage(name, PENDING)


def record_stage_shapes(state: RunState, wf_stages: Iterable[DagStage]) -> None:
    """Each stage entry carries its node's ``depends`` and ``trivial`` as the workflow has
    them now (entries of stages outside the run are not created)."""
    for node in wf_stages:
        current = state.stages.get(node.name)
        if current is not None and (
            current.get("depends") != list(node.depends)
            or current.get("trivial") != node.trivial
        ):
            entry = state.stage(node.name)
            entry["depends"] = list(node.depends)
            entry["trivial"] = node.trivial


@dataclass
class StartPlan:
    """What to do with the stages the DAG allows to start now."""

    delegations: list[str] = field(default_factory=list)
    """Delegation stages: put in Waiting."""
    pods: list[str] = field(default_factory=list)
    """Pod stages whose next attempt is due: create their pods."""
    later: list[datetime] = field(default_factory=list)
    """When the stages that must wait (a retry's or a quota refusal's backoff) are due."""


def plan_starts(
    state: RunState,
    names: Iterable[str],
    stage_objs: Mapping[str, dict],
    quota_backoff: timedelta,
    quota_max_backoff: timedelta,
) -> StartPlan:
    """Split the startable stages into delegations, pods to create now, and waits."""
    plan = StartPlan()
    for name in names:
        stage_obj = stage_objs[name]
        if (stage_obj.get("spec") or {}).get("delegation"):
            plan.delegations.append(name)
            continue
        not_before = retry_not_before(state, name, retry_policy(stage_obj)) or quota_not_before(
            state, name, quota_backoff, quota_max_backoff)
        if not_before is not None and not_before > state.now:
            plan.later.append(not_before)
            continue
        plan.pods.append(name)
    return plan


def end_run(state: RunState, phase: str, reason: str, message: str,
            scope: Iterable[str] = ()) -> list[dict]:
    """End the run: every unfinished stage gets the same fate — ``phase`` once started,
    Cancelled if it never left Pending. A stage of ``scope`` (the run's sub-graph, when
    known) that has no entry yet because the run ended before it began is Cancelled too,
    so none is left looking Pending. The pod refs of the Running stages it ends, which the
    caller deletes."""
    doomed = [
        entry["pod"] for name in state.non_terminal_stages()
        if (entry := state.stages[name]).get("pod")
        and (entry.get("status") or {}).get("phase") == RUNNING
    ]
    for name in scope:
        if state.stage_phase(name) is None:
            state.set_stage(name, CANCELLED, reason, f"not started: {message}")
    for name in state.non_terminal_stages():
        started = state.stage_phase(name) not in (None, PENDING)
        state.set_stage(name, phase if started else CANCELLED, reason, message)
    state.set_overall(phase, reason, message)
    return doomed


STAGE_MESSAGE_LIMIT = 200
"""How much of a failed stage's own message the run's message repeats."""


def failure_summary(stages: Mapping[str, dict], trivial: Collection[str]) -> str | None:
    """The run's message when its stages failed it: each failed non-trivial stage with its
    own message, then the cancelled ones counted apart — ``stage build failed: exit code
    1; 2 stages cancelled: a, b``. None when no non-trivial stage failed or was
    cancelled."""
    failed: list[str] = []
    cancelled: list[str] = []
    for name, entry in stages.items():
        if name in trivial or entry.get("trivial"):
            continue
        status = entry.get("status") or {}
        if status.get("phase") == FAILED:
            text = str(status.get("message") or "").strip()
            if len(text) > STAGE_MESSAGE_LIMIT:
                text = text[:STAGE_MESSAGE_LIMIT - 1] + "…"
            failed.append(f"stage {name} failed: {text}" if text else f"stage {name} failed")
        elif status.get("phase") == CANCELLED:
            cancelled.append(name)
    if cancelled:
        count = f"{len(cancelled)} stage{'s' if len(cancelled) > 1 else ''}"
        failed.append(f"{count} cancelled: {', '.join(cancelled)}")
    return "; ".join(failed) or None


def settle_overall(state: RunState, trivial: Collection[str], paused: bool,
                   phase: str | None = None) -> None:
    """The run's overall phase, reason and message from its stages after a DAG step
    (``phase``: `status.overall_phase` of them when known already, e.g. from the run's
    `RunBook`).

    Ended: ``StageFailed`` with `failure_summary` of the non-trivial stages that failed or
    were cancelled.
    Going on: ``ManuallyPause`` while paused, ``ManuallyResume`` after a pause, otherwise
    no reason."""
    if phase is None:
        phase = overall_phase(state.stages, trivial)
    if is_terminal(phase):
        message = failure_summary(state.stages, trivial)
        state.set_overall(phase, REASON_STAGE_FAILED if message else None, message)
        return
    previous = state.overall.get("reason")
    if paused:
        state.set_overall(phase, REASON_MANUALLY_PAUSE, "paused: no new stage starts")
    elif previous in (REASON_MANUALLY_PAUSE, REASON_MANUALLY_RESUME):
        state.set_overall(phase, REASON_MANUALLY_RESUME)
    else:
        state.set_overall(phase)


def requeue_after(now: datetime, wakeups: Iterable[datetime]) -> float | None:
    """Seconds until the earliest of ``wakeups`` (just after it); None when there is none."""
    earliest = min(wakeups, default=None)
    if earliest is None:
        return None
    return max((earliest - now).total_seconds(), 0.0) + WAKEUP_MARGIN_SECONDS
