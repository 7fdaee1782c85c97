"""The DAG step of a run: which stages are in scope, which may start, which never will.

A dependency counts as satisfied when it Succeeded, or when it Failed/was Cancelled and is
``trivial``. A dependency outside the run's sub-graph (``startStages``/``endStages``) counts
as satisfied too. A stage "has not started" while it has no status or its phase is
Pending; the run controller moves a stage to Running (reason ``StagePodCreated``) as soon
as it creates the stage's pod, so a stage is never offered twice.

A stage is *blocked* when it has not started and can never run because an upstream stage
failed (or was cancelled) without being trivial, directly or through other blocked stages
(a blocked stage blocks its dependents even when it is trivial itself: they are all found
in one step, so cancelling a trivial blocked stage never lets its dependents start).
The run controller marks blocked stages Cancelled with reason ``UpstreamFailed``; that way
no Pending stage is left behind once the run has failed (see ``status.overall_phase``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cyclone.api.references import upstream_of
from cyclone.engine.core.phases import (
    PENDING,
    SUCCEEDED,
    UNSUCCESSFUL_PHASES,
    phase_value,
)


@dataclass(frozen=True)
class DagStage:
    """One node of a workflow: the stage name, what it depends on, whether it is trivial."""

    name: str
    depends: tuple[str, ...] = ()
    trivial: bool = False


@dataclass(frozen=True)
class RunStep:
    """The facts of one DAG step: stages to start now and stages to cancel as blocked."""

    start: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def dag_stages(stages: Iterable[Any]) -> list[DagStage]:
    """Workflow stages (models or dicts with ``name, depends, trivial``) as DagStages."""
    if stages is None:
        return []
    result: list[DagStage] = []
    for stage in stages:
        if isinstance(stage, DagStage):
            result.append(stage)
            continue
        result.append(
            DagStage(
                name=str(_get(stage, "name")),
                depends=tuple(_get(stage, "depends") or ()),
                trivial=bool(_get(stage, "trivial") or False),
            )
        )
    return result


def _phases(statuses: Mapping[str, Any] | None) -> dict[str, str | None]:
    """Stage name → phase string; values may be phases, Status objects or dicts."""
    phases: dict[str, str | None] = {}
    for name, value in (statuses or {}).items():
        if type(value) is dict:  # a run-status entry, the common case: no generic lookups
            inner = value.get("phase")
            if inner is None:
                nested = value.get("status")
                inner = _get(nested, "phase") if nested is not None else None
            phases[name] = inner if inner is None or type(inner) is str else phase_value(inner)
            continue
        if value is None or isinstance(value, str) or hasattr(value, "value"):
            phases[name] = phase_value(value)
            continue
        inner = _get(value, "phase")
        if inner is None:
            nested = _get(value, "status")
            inner = _get(nested, "phase") if nested is not None else None
        phases[name] = phase_value(inner)
    return phases


def _descendants(roots: Iterable[str], children: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(children.get(name, ()))
    return seen


def stages_in_scope(
    stages: Iterable[Any],
    start_stages: Sequence[str] | None = None,
    end_stages: Sequence[str] | None = None,
) -> list[str]:
    """Stage names of the run's sub-graph, in workflow order.

    With ``start_stages`` only stages reachable from them (themselves included) count;
    with ``end_stages`` only stages that lead to them (themselves included). Names that
    are not stages of the workflow are ignored.
    """
    nodes = dag_stages(stages)
    names = [s.name for s in nodes]
    known = set(names)
    scope = set(names)
    if start_stages:
        children: dict[str, list[str]] = {}
        for node in nodes:
            for dep in node.depends:
                children.setdefault(dep, []).append(node.name)
        scope &= _descendants([s for s in start_stages if s in known], children)
    if end_stages:
        parents = {node.name: list(node.depends) for node in nodes}
        scope &= _descendants([s for s in end_stages if s in known], parents)
    return [name for name in names if name in scope]


def _not_started(phase: str | None) -> bool:
    return phase is None or phase == PENDING


def _dependency_satisfied(phase: str | None, trivial: bool) -> bool:
    if phase == SUCCEEDED:
        return True
    return trivial and phase in UNSUCCESSFUL_PHASES


def next_runnable_stages(
    stages: Iterable[Any],
    statuses: Mapping[str, Any] | None,
    start_stages: Sequence[str] | None = None,
    end_stages: Sequence[str] | None = None,
) -> list[str]:
    """Stages in scope that have not started and whose dependencies are all satisfied."""
    return _Step(stages, statuses, start_stages, end_stages).runnable()


def blocked_stages(
    stages: Iterable[Any],
    statuses: Mapping[str, Any] | None,
    start_stages: Sequence[str] | None = None,
    end_stages: Sequence[str] | None = None,
) -> list[str]:
    """Stages in scope that have not started and can never run, in workflow order."""
    return _Step(stages, statuses, start_stages, end_stages).blocked()


class _Step:
    """The graph, scope and phases of one DAG step, computed once for both facts."""

    def __init__(
        self,
        stages: Iterable[Any],
        statuses: Mapping[str, Any] | None,
        start_stages: Sequence[str] | None,
        end_stages: Sequence[str] | None,
    ) -> None:
        self.nodes = dag_stages(stages)
        self.by_name = {node.name: node for node in self.nodes}
        if start_stages or end_stages:
            self.scope = set(stages_in_scope(self.nodes, start_stages, end_stages))
        else:
            self.scope = set(self.by_name)
        self.phases = _phases(statuses)

    def runnable(self) -> list[str]:
        by_name, scope, phases = self.by_name, self.scope, self.phases
        runnable: list[str] = []
        for node in self.nodes:
            if node.name not in scope or not _not_started(phases.get(node.name)):
                continue
            if all(
                dep not in scope
                or _dependency_satisfied(phases.get(dep), by_name[dep].trivial)
                for dep in node.depends
                if dep in by_name
            ):
                runnable.append(node.name)
        return runnable

    def blocked(self) -> list[str]:
        by_name, scope, phases = self.by_name, self.scope, self.phases
        blocked: set[str] = set()

        def blocks(dep: str) -> bool:
            if dep not in scope or dep not in by_name:
                return False
            if dep in blocked:
                return True
            return phases.get(dep) in UNSUCCESSFUL_PHASES and not by_name[dep].trivial

        changed = True
        while changed:
            changed = False
            for node in self.nodes:
                if node.name in blocked or node.name not in scope:
                    continue
                if not _not_started(phases.get(node.name)):
                    continue
                if any(blocks(dep) for dep in node.depends):
                    blocked.add(node.name)
                    changed = True
        return [node.name for node in self.nodes if node.name in blocked]


def plan_step(
    stages: Iterable[Any],
    statuses: Mapping[str, Any] | None,
    start_stages: Sequence[str] | None = None,
    end_stages: Sequence[str] | None = None,
) -> RunStep:
    """Both facts of a DAG step at once; apply them before computing the overall phase."""
    step = _Step(stages, statuses, start_stages, end_stages)
    return RunStep(start=step.runnable(), blocked=step.blocked())


def upstream_stages(stages: Iterable[Any], stage: str) -> set[str]:
    """Every stage the given one depends on, directly or transitively (itself excluded)."""
    return upstream_of({node.name: list(node.depends) for node in dag_stages(stages)}, stage)


def scope_problems(
    stages: Iterable[Any],
    start_stages: Sequence[str] | None = None,
    end_stages: Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """Why a run of these stages could never start, as ``(field, message)`` pairs of the
    run's spec; empty when it can.

    A workflow without stages, a ``startStages``/``endStages`` entry that is not a stage
    of the workflow, and a start/end pair that selects no stage would otherwise leave the
    run Pending for ever.
    """
    nodes = dag_stages(stages)
    if not nodes:
        return [("spec.workflowRef", "the workflow has no stages")]
    known = {node.name for node in nodes}
    problems = [
        (f"spec.{field}[{index}]", f'unknown stage "{name}"')
        for field, names in (("startStages", start_stages), ("endStages", end_stages))
        for index, name in enumerate(names or ())
        if name not in known
    ]
    if not problems and (start_stages or end_stages) and not stages_in_scope(
        nodes, start_stages, end_stages
    ):
        problems.append(("spec.endStages", "no stage both follows startStages and leads to "
                                           "endStages"))
    return problems
