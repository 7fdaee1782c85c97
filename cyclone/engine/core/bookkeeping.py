"""A run's DAG facts kept up to date stage by stage instead of recomputed per reconcile.

`RunBook` holds what `dag.plan_step`, `status.overall_phase`, `progress.enter_scope` and
`progress.record_stage_shapes` would find in a run's stage entries (the stages that may
start, the blocked ones, the count of entries per phase, the stages without a phase, the
entries whose shape differs from the workflow), and is told which entries changed. An
update costs the entries that changed and their dependents, not the size of the run.

It is derived from the stage entries of one run status and never replaces them: the run
controller keeps one per run between reconciles, keyed by the resourceVersion it was
derived from, and rebuilds it (`build`) or compares every entry again (`resync`) when the
run it reads is a version it has not seen. The answers equal those of the functions that
walk every stage; the property tests hold them to that.

A workflow whose sub-graph has a cycle or repeats a stage name gets no book (`build`
returns None): the caller then uses the full functions, whose fixed point it keeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cyclone.engine.core.dag import DagStage, RunStep
from cyclone.engine.core.phases import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    UNSUCCESSFUL_PHASES,
    WAITING,
    phase_value,
)

_Summary = tuple[str | None, bool, Any, Any]
"""What the book reads of one entry: phase, own trivial flag, raw depends, raw trivial."""


def _summary(entry: Any) -> _Summary | None:
    if entry is None:
        return None
    status = entry.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    if phase is not None and type(phase) is not str:
        phase = phase_value(phase)
    depends = entry.get("depends")
    if isinstance(depends, list):
        depends = tuple(depends)
    trivial = entry.get("trivial")
    return phase, bool(trivial or False), depends, trivial


def _not_started(phase: str | None) -> bool:
    return phase is None or phase == PENDING


class RunBook:
    """The DAG bookkeeping of one run: built once, then told which stage entries changed."""

    def __init__(self, nodes: Sequence[DagStage], scope: Iterable[str]) -> None:
        self._order = {node.name: index for index, node in enumerate(nodes)}
        self._nodes = {node.name: node for node in nodes}
        self._trivial_names = frozenset(node.name for node in nodes if node.trivial)
        self._scope = frozenset(scope) & self._nodes.keys()
        self._deps: dict[str, tuple[str, ...]] = {}
        self._children: dict[str, list[str]] = {name: [] for name in self._scope}
        for name in self._scope:
            deps = tuple(d for d in dict.fromkeys(self._nodes[name].depends) if d in self._scope)
            self._deps[name] = deps
            for dep in deps:
                self._children[dep].append(name)
        self._seen: dict[str, _Summary] = {}
        self._by_phase: dict[str | None, set[str]] = {}
        self._counts: Counter[str] = Counter()
        self._failing = 0
        self._unsatisfied = {name: len(deps) for name, deps in self._deps.items()}
        self._blockers = dict.fromkeys(self._scope, 0)
        self._blocking: set[str] = set()
        self._ready = {name for name, count in self._unsatisfied.items() if count == 0}
        self._blocked: set[str] = set()
        self._unphased = set(self._scope)
        self._misshapen: set[str] = set()

    @classmethod
    def build(cls, nodes: Sequence[DagStage], scope: Iterable[str],
              stages: Mapping[str, Any] | None) -> RunBook | None:
        """The book of a run with these workflow nodes, sub-graph and stage entries; None
        when the sub-graph is not a DAG of distinct names."""
        if len({node.name for node in nodes}) != len(nodes):
            return None
        book = cls(nodes, scope)
        if not book._acyclic():
            return None
        book.update(stages or {}, (stages or {}).keys())
        return book

    def _acyclic(self) -> bool:
        waiting = {name: len(deps) for name, deps in self._deps.items()}
        free = [name for name, count in waiting.items() if count == 0]
        done = 0
        while free:
            name = free.pop()
            done += 1
            for child in self._children[name]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    free.append(child)
        return done == len(self._deps)

    def update(self, stages: Mapping[str, Any], names: Iterable[str]) -> None:
        """Read again the entries of ``names`` (present or not) in ``stages``."""
        for name in names:
            self._apply(name, _summary(stages.get(name)))

    def resync(self, stages: Mapping[str, Any]) -> None:
        """Compare every entry of ``stages`` with what the book holds and take in those
        that differ: for a status the book was not derived from."""
        gone = [name for name in self._seen if name not in stages]
        for name in gone:
            self._apply(name, None)
        for name, entry in stages.items():
            summary = _summary(entry)
            if self._seen.get(name) != summary:
                self._apply(name, summary)

    def _apply(self, name: str, summary: _Summary | None) -> None:
        old = self._seen.get(name)
        if old == summary:
            return
        old_phase = old[0] if old is not None else None
        if old is not None:
            self._counts[old[0] or PENDING] -= 1
            self._by_phase[old[0]].discard(name)
            self._failing -= self._fails_run(name, old)
        if summary is None:
            self._seen.pop(name, None)
            self._misshapen.discard(name)
        else:
            self._seen[name] = summary
            self._counts[summary[0] or PENDING] += 1
            self._by_phase.setdefault(summary[0], set()).add(name)
            self._failing += self._fails_run(name, summary)
            node = self._nodes.get(name)
            if node is not None and (summary[2] != node.depends or summary[3] != node.trivial):
                self._misshapen.add(name)
            else:
                self._misshapen.discard(name)
        if name in self._scope:
            self._phase_changed(name, old_phase, summary[0] if summary is not None else None)

    def _fails_run(self, name: str, summary: _Summary) -> bool:
        return summary[0] in UNSUCCESSFUL_PHASES and not (
            summary[1] or name in self._trivial_names)

    def _satisfies(self, name: str, phase: str | None) -> bool:
        if phase == SUCCEEDED:
            return True
        return self._nodes[name].trivial and phase in UNSUCCESSFUL_PHASES

    def _phase_changed(self, name: str, old: str | None, new: str | None) -> None:
        if new is None:
            self._unphased.add(name)
        else:
            self._unphased.discard(name)
        was, now = self._satisfies(name, old), self._satisfies(name, new)
        if was != now:
            step = -1 if now else 1
            for child in self._children[name]:
                self._unsatisfied[child] += step
                self._recheck_ready(child)
        self._recheck_ready(name)
        self._propagate_blocking(name)

    def _recheck_ready(self, name: str) -> None:
        if self._unsatisfied[name] == 0 and _not_started(self._phase(name)):
            self._ready.add(name)
        else:
            self._ready.discard(name)

    def _phase(self, name: str) -> str | None:
        seen = self._seen.get(name)
        return seen[0] if seen is not None else None

    def _propagate_blocking(self, name: str) -> None:
        """Blocked: not started with a blocking dependency; blocking: blocked, or failed
        (or cancelled) without being trivial. Changes travel down to the dependents."""
        pending = [name]
        while pending:
            current = pending.pop()
            phase = self._phase(current)
            blocked = _not_started(phase) and self._blockers[current] > 0
            if blocked:
                self._blocked.add(current)
            else:
                self._blocked.discard(current)
            blocking = blocked or (
                phase in UNSUCCESSFUL_PHASES and not self._nodes[current].trivial)
            if blocking == (current in self._blocking):
                continue
            if blocking:
                self._blocking.add(current)
            else:
                self._blocking.discard(current)
            step = 1 if blocking else -1
            for child in self._children[current]:
                self._blockers[child] += step
                pending.append(child)

    def _in_order(self, names: Iterable[str]) -> list[str]:
        order = self._order
        return sorted(names, key=lambda name: (order.get(name, len(order)), name))

    def runnable(self) -> list[str]:
        """`dag.next_runnable_stages`: in scope, not started, every dependency satisfied."""
        return self._in_order(self._ready)

    def blocked(self) -> list[str]:
        """`dag.blocked_stages`: in scope, not started, and never able to run."""
        return self._in_order(self._blocked)

    def step(self) -> RunStep:
        """`dag.plan_step` of the entries the book holds."""
        return RunStep(start=self.runnable(), blocked=self.blocked())

    def overall_phase(self) -> str:
        """`status.overall_phase` of the entries, with the workflow's trivial stages."""
        counts = self._counts
        if not self._seen:
            return PENDING
        if counts[RUNNING]:
            return RUNNING
        if counts[WAITING]:
            return WAITING
        if self._failing:
            return FAILED
        if counts[PENDING]:
            return RUNNING
        return SUCCEEDED

    def counts(self) -> dict[str, int]:
        """Entries per phase (an entry without one counts as Pending)."""
        return {phase: count for phase, count in self._counts.items() if count}

    def __len__(self) -> int:
        return len(self._seen)

    def in_phase(self, phase: str | None) -> list[str]:
        """Entries in ``phase`` (None: without one), in workflow order."""
        return self._in_order(self._by_phase.get(phase, ()))

    def unphased(self) -> list[str]:
        """Stages of the sub-graph whose entry has no phase (or no entry): what
        `progress.enter_scope` makes Pending, in workflow order."""
        return self._in_order(self._unphased)

    def misshapen(self) -> list[DagStage]:
        """Nodes whose entry does not carry their ``depends`` and ``trivial``: what
        `progress.record_stage_shapes` rewrites."""
        return [self._nodes[name] for name in self._in_order(self._misshapen)]
