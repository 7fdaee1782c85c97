"""Random workflows driven to the end with the DAG step and the overall-status rule."""

import random

import pytest

from cyclone.engine.core.dag import DagStage, plan_step, stages_in_scope, upstream_stages
from cyclone.engine.core.status import overall_phase


def random_workflow(rng: random.Random) -> list[DagStage]:
    count = rng.randint(1, 12)
    stages = []
    for index in range(count):
        depends = tuple(f"s{d}" for d in range(index) if rng.random() < 0.3)
        stages.append(DagStage(f"s{index}", depends, trivial=rng.random() < 0.25))
    rng.shuffle(stages)
    return stages


def random_scope(rng: random.Random, stages: list[DagStage]):
    names = [s.name for s in stages]
    start = rng.sample(names, min(len(names), rng.randint(1, 2))) if rng.random() < 0.3 else []
    end = rng.sample(names, min(len(names), rng.randint(1, 2))) if rng.random() < 0.3 else []
    return start, end


@pytest.mark.parametrize("seed", range(300))
def test_every_run_ends_and_never_starts_a_stage_too_early(seed):
    rng = random.Random(seed)
    stages = random_workflow(rng)
    by_name = {s.name: s for s in stages}
    start, end = random_scope(rng, stages)
    scope = set(stages_in_scope(stages, start, end))
    statuses: dict[str, str] = {name: "Pending" for name in scope}
    trivial = {s.name for s in stages if s.trivial}
    started: list[str] = []

    for _ in range(100):
        step = plan_step(stages, statuses, start, end)
        for name in step.blocked:
            statuses[name] = "Cancelled"
        for name in step.start:
            for dep in by_name[name].depends:
                if dep in scope:
                    assert statuses[dep] == "Succeeded" or (
                        dep in trivial and statuses[dep] in ("Failed", "Cancelled")
                    ), (name, dep, statuses)
            for ancestor in upstream_stages(stages, name) & scope:
                assert not (
                    ancestor not in trivial and statuses[ancestor] in ("Failed", "Cancelled")
                )
            statuses[name] = "Running"
            started.append(name)
        running = [name for name, phase in statuses.items() if phase == "Running"]
        if running:
            assert overall_phase(statuses, trivial) == "Running"
            finishing = rng.choice(running)
            statuses[finishing] = "Failed" if rng.random() < 0.2 else "Succeeded"
            continue
        break
    else:
        pytest.fail("the run did not end")

    assert set(statuses) == scope
    assert all(phase in ("Succeeded", "Failed", "Cancelled") for phase in statuses.values())
    assert len(started) == len(set(started))
    bad = [n for n, p in statuses.items() if p in ("Failed", "Cancelled") and n not in trivial]
    expected = "Failed" if bad else ("Succeeded" if scope else "Pending")
    assert overall_phase(statuses, trivial) == expected
