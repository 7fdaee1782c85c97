"""Progress held back: a reconcile that only made progress (admitted a run, started a
stage) may keep it for `progress_write_delay_seconds` and write it with what follows;
outcomes are written at once, and losing what was held loses nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cyclone.engine.config import QueueLimits
from cyclone.kube import kinds

from ..harness import (
    BACKENDS,
    NAMESPACE,
    overall,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)
from .test_run_controller import World, control_cluster, make_world

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


class CountingWrites:
    """The cluster the controller writes through, counting run status patches."""

    def __init__(self, cluster) -> None:
        self._cluster = cluster
        self.status_patches = 0

    def __getattr__(self, name: str):
        return getattr(self._cluster, name)

    async def patch(self, kind, name, body, namespace=None, **options):
        if kind == kinds.WORKFLOW_RUN and options.get("subresource") == "status":
            self.status_patches += 1
        return await self._cluster.patch(kind, name, body, namespace, **options)


@pytest.fixture
async def delayed(tmp_path, backend) -> AsyncIterator[World]:
    async with control_cluster(tmp_path, backend) as cluster:
        world = make_world(cluster)
        world.config = world.config.model_copy(update={"progress_write_delay_seconds": 1.0})
        restart(world)
        yield world


def restart(world: World, behind: bool = True) -> None:
    """A new engine, behind its work unless `behind` is False."""
    world.restart()
    assert world.controller is not None
    world.controller.behind = lambda: behind


def one_stage(world: World) -> None:
    world.define(shell_stage("a", "true"), workflow("wf", [{"name": "a"}]))


def two_stages(world: World) -> None:
    world.define(shell_stage("a", "true"), shell_stage("b", "true"),
                 workflow("wf", [{"name": "a"}, {"name": "b", "depends": ["a"]}]))


async def _only_pod(world: World) -> dict:
    pods = await world.stage_pods()
    assert len(pods) == 1
    return pods[0]


async def _pod_ends(world: World, pod: dict, phase: str) -> None:
    ended = await world.cluster.get(kinds.POD, pod["metadata"]["name"], NAMESPACE)
    ended["status"] = {"phase": phase}
    world.pods.put(ended)


async def test_a_stage_that_ends_within_the_delay_costs_one_status_write(delayed):
    counting = CountingWrites(delayed.cluster)
    delayed.cluster = counting
    restart(delayed)
    one_stage(delayed)
    await delayed.submit(workflow_run("r1", "wf"))
    requeue, run = await delayed.look()
    assert "status" not in run
    assert requeue is not None and 0 < requeue <= 1.0
    pod = await _only_pod(delayed)

    await _pod_ends(delayed, pod, "Succeeded")
    requeue, run = await delayed.look()
    assert overall(run)["phase"] == "Succeeded"
    entry = run["status"]["stages"]["a"]
    assert (entry["status"]["phase"], entry["attempts"]) == ("Succeeded", 1)
    assert entry["pod"]["name"] == pod["metadata"]["name"]
    assert "deadline" in run["status"]
    assert counting.status_patches == 1


async def test_progress_is_written_once_the_delay_is_over(delayed):
    one_stage(delayed)
    await delayed.submit(workflow_run("r1", "wf"))
    _, run = await delayed.look()
    assert "status" not in run
    delayed.clock.advance(0.5)
    requeue, run = await delayed.look()
    assert "status" not in run
    assert requeue == pytest.approx(0.5)
    delayed.clock.advance(0.5)
    requeue, run = await delayed.look()
    assert stage_status(run, "a")["phase"] == "Running"
    assert run["status"]["stages"]["a"]["pod"]["name"] == (
        await _only_pod(delayed))["metadata"]["name"]
    assert requeue is None or requeue > 1.0


async def test_an_outcome_is_written_at_once_with_the_progress_it_follows(delayed):
    two_stages(delayed)
    await delayed.submit(workflow_run("r1", "wf"))
    _, run = await delayed.look()
    first = await _only_pod(delayed)
    await _pod_ends(delayed, first, "Succeeded")
    _, run = await delayed.look()
    assert stage_status(run, "a")["phase"] == "Succeeded"
    assert (stage_status(run, "b")["phase"], stage_status(run, "b")["reason"]) == (
        "Running", "StagePodCreated")


async def test_a_restart_that_loses_the_held_start_makes_no_second_pod(delayed):
    one_stage(delayed)
    await delayed.submit(workflow_run("r1", "wf"))
    await delayed.look()
    pod = await _only_pod(delayed)
    restart(delayed)
    delayed.clock.advance(2)
    _, run = await delayed.look()
    assert "status" not in run
    delayed.clock.advance(2)
    _, run = await delayed.look()
    assert run["status"]["stages"]["a"]["pod"]["name"] == pod["metadata"]["name"]
    assert run["status"]["stages"]["a"]["attempts"] == 1
    assert (await _only_pod(delayed))["metadata"]["uid"] == pod["metadata"]["uid"]
    await _pod_ends(delayed, pod, "Succeeded")
    _, run = await delayed.look()
    assert overall(run)["phase"] == "Succeeded"


async def test_a_run_stopped_before_its_start_was_written_still_loses_its_pod(delayed):
    one_stage(delayed)
    await delayed.submit(workflow_run("r1", "wf"))
    await delayed.look()
    await _only_pod(delayed)
    await delayed.edit_spec(stopped=True)
    _, run = await delayed.look()
    assert overall(run)["phase"] == "Cancelled"
    await delayed.look()
    assert [pod for pod in await delayed.stage_pods()
            if not pod["metadata"].get("deletionTimestamp")] == []


async def test_with_a_parallelism_limit_every_change_is_written_at_once(delayed):
    delayed.config = delayed.config.model_copy(update={"overall": QueueLimits(max_running=1)})
    restart(delayed)
    one_stage(delayed)
    await delayed.submit(workflow_run("r1", "wf"))
    _, run = await delayed.look()
    assert stage_status(run, "a")["phase"] == "Running"



async def test_an_engine_that_is_not_behind_writes_progress_at_once(delayed):
    restart(delayed, behind=False)
    one_stage(delayed)
    await delayed.submit(workflow_run("r1", "wf"))
    _, run = await delayed.look()
    assert stage_status(run, "a")["phase"] == "Running"
