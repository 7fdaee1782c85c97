"""The incremental DAG bookkeeping (`core.bookkeeping.RunBook`) against the functions that
walk every stage: random workflows, random orders of stage events, writes the book is
told of and writes it is not, and restarts that drop it. After every event the book's
runnable and blocked stages, overall phase, counts, stages without a phase and misshapen
entries equal the full recomputation."""

from __future__ import annotations

import copy
import random
from collections import Counter
from datetime import UTC, datetime

import pytest

from cyclone.engine.core.bookkeeping import RunBook
from cyclone.engine.core.dag import DagStage, plan_step, stages_in_scope
from cyclone.engine.core.phases import (
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    WAITING,
    is_terminal,
)
from cyclone.engine.core.progress import REASON_STAGE_FAILED
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.status import overall_phase

NOW = datetime(2024, 1, 1, tzinfo=UTC)
SEEDS = 300
EVENTS = 60


def random_workflow(rng: random.Random) -> list[DagStage]:
    count = rng.randint(1, 14)
    stages = []
    for index in range(count):
        depends = [f"s{d}" for d in range(index) if rng.random() < 0.3]
        if depends and rng.random() < 0.1:
            depends.append(depends[0])
        if rng.random() < 0.05:
            depends.append("not-a-stage")
        stages.append(DagStage(f"s{index}", tuple(depends), trivial=rng.random() < 0.25))
    rng.shuffle(stages)
    return stages


def random_range(rng: random.Random, names: list[str]) -> tuple[list[str], list[str]]:
    start = rng.sample(names, min(len(names), rng.randint(1, 2))) if rng.random() < 0.3 else []
    end = rng.sample(names, min(len(names), rng.randint(1, 2))) if rng.random() < 0.3 else []
    return start, end


class Run:
    """A stored run and the book kept of it between reconciles, as the controller does."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nodes = random_workflow(rng)
        self.by_name = {node.name: node for node in self.nodes}
        self.start, self.end = random_range(rng, list(self.by_name))
        self.scope = stages_in_scope(self.nodes, self.start, self.end)
        self.trivial = {node.name for node in self.nodes if node.trivial}
        self.stored: dict = {"metadata": {"name": "r", "namespace": "ns"}, "spec": {},
                             "status": {"stages": self.initial_stages()}}
        self.book: RunBook | None = None
        self.book_current = False

    def initial_stages(self) -> dict:
        if self.rng.random() < 0.6:
            return {}
        stages = {}
        for name in self.scope:
            if self.rng.random() < 0.7:
                phase = self.rng.choice([PENDING, PENDING, RUNNING, SUCCEEDED, FAILED])
                stages[name] = {"status": {"phase": phase}}
        return stages

    def reconcile(self) -> None:
        """One reconcile: a few events on a working copy, checked after each, then
        written (or, now and then, lost)."""
        state = RunState(self.stored, NOW)
        if self.book is None or self.rng.random() < 0.05:
            self.book = RunBook.build(self.nodes, self.scope, state.stages)
        elif not self.book_current:
            self.book.resync(state.stages)
        self.check(state)
        for _ in range(self.rng.randint(1, 4)):
            self.event(state)
            self.book.update(state.stages, state.touched_stages)
            self.check(state)
        roll = self.rng.random()
        if roll < 0.05:
            self.book_current = False
            return
        self.stored = copy.deepcopy(state.run_with_status())
        self.book_current = True
        if roll < 0.15:
            self.foreign_write()

    def foreign_write(self) -> None:
        """A write the book is not told of: entries changed, added or removed."""
        stages = self.stored["status"]["stages"]
        names = [*self.by_name, "outside"]
        for _ in range(self.rng.randint(1, 3)):
            name = self.rng.choice(names)
            roll = self.rng.random()
            if roll < 0.2:
                stages.pop(name, None)
            elif roll < 0.4:
                stages[name] = {}
            else:
                stages[name] = {"status": {"phase": self.rng.choice(
                    [PENDING, RUNNING, WAITING, SUCCEEDED, FAILED, CANCELLED])},
                    "trivial": self.rng.random() < 0.2}
        self.book_current = False

    def event(self, state: RunState) -> None:
        rng = self.rng
        step = plan_step(self.nodes, state.stages, self.start, self.end)
        active = [n for n in state.stages if state.stage_phase(n) in (RUNNING, WAITING)]
        not_started = [n for n in self.scope if state.stage_phase(n) in (None, PENDING)]
        kind = rng.choice(["enter", "start", "start", "succeed", "succeed", "fail", "cancel",
                           "retry", "trivial", "shape", "touch", "anything"])
        if kind == "enter":
            for name in self.scope:
                if state.stage_phase(name) is None:
                    state.set_stage(name, PENDING)
        elif kind == "start" and step.start:
            name = rng.choice(step.start)
            if rng.random() < 0.2:
                state.set_stage(name, WAITING, "DelegationSent")
            else:
                state.stage(name)["pod"] = {"name": f"{name}-pod", "namespace": "ns"}
                state.set_stage(name, RUNNING, "StagePodCreated")
        elif kind in ("succeed", "fail") and active:
            name = rng.choice(active)
            if kind == "succeed":
                state.set_stage(name, SUCCEEDED, "PodSucceed")
            else:
                state.set_stage(name, FAILED, "PodFailed", "exit code 1")
        elif kind == "cancel":
            for name in step.blocked:
                state.set_stage(name, CANCELLED, "UpstreamFailed")
            if not step.blocked and not_started:
                state.set_stage(rng.choice(not_started), CANCELLED, REASON_STAGE_FAILED)
        elif kind == "retry" and active:
            state.set_stage(rng.choice(active), PENDING, "RetryAfterFailure")
        elif kind == "trivial" and state.stages:
            entry = state.stage(rng.choice(list(state.stages)))
            entry["trivial"] = not entry.get("trivial")
        elif kind == "shape":
            for node in self.nodes:
                if node.name in state.stages:
                    entry = state.stage(node.name)
                    entry["depends"] = list(node.depends)
                    entry["trivial"] = node.trivial
        elif kind == "touch":
            state.stage(rng.choice(list(self.by_name)))
        elif kind == "anything":
            name = rng.choice(list(self.by_name))
            phase = rng.choice([PENDING, RUNNING, WAITING, SUCCEEDED, FAILED, CANCELLED])
            if not is_terminal(state.stage_phase(name)):
                state.set_stage(name, phase, "Observed")

    def check(self, state: RunState) -> None:
        book = self.book
        assert book is not None
        stages = state.stages
        full = plan_step(self.nodes, stages, self.start, self.end)
        assert book.runnable() == full.start, stages
        assert book.blocked() == full.blocked, stages
        assert book.step() == full
        assert book.overall_phase() == overall_phase(stages, self.trivial), stages
        assert book.counts() == dict(Counter(
            (entry.get("status") or {}).get("phase") or PENDING for entry in stages.values()))
        assert book.unphased() == [n for n in self.scope if state.stage_phase(n) is None]
        assert [node.name for node in book.misshapen()] == [
            node.name for node in self.nodes if node.name in stages and (
                stages[node.name].get("depends") != list(node.depends)
                or stages[node.name].get("trivial") != node.trivial)]
        for phase in (RUNNING, WAITING, SUCCEEDED):
            assert set(book.in_phase(phase)) == {
                n for n in stages if state.stage_phase(n) == phase}


@pytest.mark.parametrize("seed", range(SEEDS))
def test_the_book_answers_as_the_full_recomputation_after_every_event(seed):
    run = Run(random.Random(seed))
    if RunBook.build(run.nodes, run.scope, {}) is None:
        pytest.fail("a random workflow is a DAG of distinct names")
    for _ in range(EVENTS):
        run.reconcile()


def test_a_cycle_or_a_repeated_name_gets_no_book():
    cycle = [DagStage("a", ("b",)), DagStage("b", ("a",)), DagStage("c")]
    assert RunBook.build(cycle, ["a", "b", "c"], {}) is None
    repeated = [DagStage("a"), DagStage("a", ("b",)), DagStage("b")]
    assert RunBook.build(repeated, ["a", "b"], {}) is None
    itself = [DagStage("a", ("a",))]
    assert RunBook.build(itself, ["a"], {}) is None


def test_a_cycle_outside_the_run_does_not_matter():
    nodes = [DagStage("a"), DagStage("b", ("c",)), DagStage("c", ("b",))]
    book = RunBook.build(nodes, ["a"], {})
    assert book is not None
    assert book.runnable() == ["a"]
