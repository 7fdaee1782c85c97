"""The run controller driven one reconcile at a time: its caches are filled from plain
dicts by the test, its clock only moves when the test says, and what it writes lands in an
embedded cluster the test reads back. Each test says what one reconcile decides."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from support.clusters import eventually

from cyclone.api import keys
from cyclone.engine.config import EngineConfig, QueueLimits
from cyclone.engine.controllers.caches import ControlCaches, ExecutionCluster
from cyclone.engine.controllers.run import RunController
from cyclone.engine.core.timefmt import parse_rfc3339
from cyclone.kube import kinds
from cyclone.kube.clock import ManualClock
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.protocol import Cluster

from ..harness import (
    BACKENDS,
    NAMESPACE,
    PVC,
    overall,
    prepare_tenant,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)

CLUSTER = keys.CONTROL_CLUSTER_NAME
QUOTA_REFUSED = "RetryOnExceededQuotaTimeout"


class DictCache:
    """The read side of an informer (`caches.ObjectCache`) over objects the test puts in."""

    def __init__(self, *objects: dict) -> None:
        self.objects: dict[tuple[str | None, str], dict] = {}
        for obj in objects:
            self.put(obj)
        self.unreachable_seconds = 0.0
        self.last_error: str | None = None

    def put(self, obj: dict) -> None:
        meta = obj["metadata"]
        self.objects[(meta.get("namespace"), meta["name"])] = copy.deepcopy(obj)

    def get(self, namespace: str | None, name: str) -> dict | None:
        return self.objects.get((namespace, name))

    def list(self, namespace: str | None = None, label_selector: str | None = None
             ) -> list[dict]:
        return [obj for (ns, _), obj in self.objects.items()
                if namespace is None or ns == namespace]

    def unreachable_for(self) -> float:
        return self.unreachable_seconds


@dataclass
class World:
    cluster: Cluster
    clock: ManualClock
    config: EngineConfig
    caches: ControlCaches
    pods: DictCache
    problems: dict[str, str] = field(default_factory=dict)
    controller: RunController | None = None

    def restart(self) -> None:
        """A new engine: nothing of the last one's memory is left, only what it wrote."""
        self.controller = RunController(self.cluster, self.caches, self.config,
                                        clock=self.clock.now)

    def define(self, *objects: dict) -> None:
        for obj in objects:
            cache = self.caches.workflows if obj["kind"] == "Workflow" else self.caches.stages
            cache.put(obj)

    async def submit(self, run: dict) -> None:
        self.caches.runs.put(await self.cluster.create(run))

    async def run(self, name: str = "r1") -> dict:
        return await self.cluster.get(kinds.WORKFLOW_RUN, name, NAMESPACE)

    async def look(self, name: str = "r1") -> tuple[float | None, dict]:
        """The runs cache catches up with the cluster, then one reconcile of run ``name``:
        (when it asks to be looked at again, the run as it is stored afterwards)."""
        for run in (await self.cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)).items:
            self.caches.runs.put(run)
        assert self.controller is not None
        requeue = await self.controller.reconcile(f"{NAMESPACE}/{name}")
        return requeue, await self.run(name)

    async def pod_of(self, run: dict, stage: str) -> dict:
        ref = run["status"]["stages"][stage]["pod"]
        return await self.cluster.get(kinds.POD, ref["name"], ref["namespace"])

    async def pod_ends(self, run: dict, stage: str, phase: str) -> None:
        """The pods cache shows the stage's pod ended in ``phase``."""
        pod = await self.pod_of(run, stage)
        pod["status"] = {"phase": phase}
        self.pods.put(pod)

    async def stage_pods(self) -> list[dict]:
        listed = await self.cluster.list(kinds.POD, NAMESPACE,
                                          label_selector=keys.LABEL_WORKFLOWRUN)
        return listed.items

    async def edit_spec(self, name: str = "r1", **spec: object) -> None:
        run = await self.run(name)
        run["spec"].update(spec)
        await self.cluster.replace(run)


@contextlib.asynccontextmanager
async def control_cluster(tmp_path, backend: str) -> AsyncIterator[Cluster]:
    """The embedded cluster, or (``kube``) a kube-apiserver with the shipped CRDs, which
    keeps only the status fields they name."""
    if backend == "kube":
        from support.kube_engine import engine_test_cluster

        async with engine_test_cluster(NAMESPACE, PVC) as cluster:
            yield cluster
        return
    cluster = EmbeddedCluster(tmp_path / "cluster.db", pod_gc_interval=3600)
    await cluster.start()
    try:
        await prepare_tenant(cluster)
        yield cluster
    finally:
        await cluster.close()


@pytest.fixture
async def world(tmp_path, backend) -> AsyncIterator[World]:
    async with control_cluster(tmp_path, backend) as cluster:
        yield make_world(cluster)


def make_world(cluster: Cluster) -> World:
    pods = DictCache()
    problems: dict[str, str] = {}
    caches = ControlCaches(
        runs=DictCache(), workflows=DictCache(), stages=DictCache(), resources=DictCache(),
        projects=DictCache(),
        execution={CLUSTER: ExecutionCluster(CLUSTER, cluster, pods)},
        cluster_problem=lambda name: problems.get(name),
    )
    config = EngineConfig(gc_enabled=False, watch_pod_events=False,
                          quota_retry_backoff_seconds=1, quota_retry_max_backoff_seconds=4,
                          cluster_unreachable_seconds=30, progress_write_delay_seconds=0)
    world = World(cluster, ManualClock(), config, caches, pods, problems)
    world.restart()
    return world


def two_stages(world: World, **first: object) -> None:
    world.define(shell_stage("a", "true", **first), shell_stage("b", "true"),
                 workflow("wf", [{"name": "a"}, {"name": "b", "depends": ["a"]}]))


async def test_an_admitted_run_gets_its_deadline_and_a_pod_for_its_first_stage_only(world):
    two_stages(world)
    await world.submit(workflow_run("r1", "wf", timeout="10m"))
    requeue, run = await world.look()
    assert overall(run)["phase"] == "Running"
    assert parse_rfc3339(run["status"]["deadline"]) == world.clock.now() + timedelta(minutes=10)
    assert (stage_status(run, "a")["phase"], stage_status(run, "a")["reason"]) == (
        "Running", "StagePodCreated")
    assert stage_status(run, "b")["phase"] == "Pending"
    assert run["status"]["stages"]["b"]["depends"] == ["a"]
    assert [p["metadata"]["name"] for p in await world.stage_pods()] == [
        run["status"]["stages"]["a"]["pod"]["name"]]
    assert requeue == pytest.approx(600.05)


async def test_a_succeeded_pod_starts_the_next_stage_and_the_last_one_ends_the_run(world):
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    _, run = await world.look()
    await world.pod_ends(run, "a", "Succeeded")
    _, run = await world.look()
    assert stage_status(run, "a")["phase"] == "Succeeded"
    assert (stage_status(run, "b")["phase"], stage_status(run, "b")["reason"]) == (
        "Running", "StagePodCreated")
    await world.pod_ends(run, "b", "Succeeded")
    requeue, run = await world.look()
    assert overall(run)["phase"] == "Succeeded"
    assert "reason" not in overall(run)
    assert run["status"]["completionTime"] == overall(run)["lastTransitionTime"]
    assert requeue == 0.0


async def test_a_failed_pod_fails_the_run_and_cancels_what_never_started(world):
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    _, run = await world.look()
    await world.pod_ends(run, "a", "Failed")
    _, run = await world.look()
    assert stage_status(run, "a")["phase"] == "Failed"
    assert stage_status(run, "b")["phase"] == "Cancelled"
    assert stage_status(run, "b")["reason"] == "UpstreamFailed"
    assert overall(run) | {"lastTransitionTime": None, "startTime": None} == {
        "phase": "Failed", "reason": "StageFailed",
        "message": "stage a failed: pod failed; 1 stage cancelled: b",
        "lastTransitionTime": None, "startTime": None}


async def test_a_failed_attempt_is_retried_once_its_backoff_has_passed(world):
    two_stages(world, retries=1, retryBackoff="10s")
    await world.submit(workflow_run("r1", "wf"))
    _, run = await world.look()
    first_pod = run["status"]["stages"]["a"]["pod"]["name"]
    await world.pod_ends(run, "a", "Failed")
    requeue, run = await world.look()
    assert stage_status(run, "a")["phase"] == "Pending"
    assert stage_status(run, "a")["reason"] == "RetryAfterFailure"
    assert requeue == pytest.approx(10.05)

    world.clock.advance(9.5)
    requeue, run = await world.look()
    assert run["status"]["stages"]["a"]["attempts"] == 1
    assert len(await world.stage_pods()) == 1
    assert requeue == pytest.approx(0.55)

    world.clock.advance(0.6)
    _, run = await world.look()
    assert run["status"]["stages"]["a"]["attempts"] == 2
    assert stage_status(run, "a")["phase"] == "Running"
    assert run["status"]["stages"]["a"]["pod"]["name"] != first_pod


async def test_a_run_past_its_deadline_fails_and_its_running_pod_is_deleted(world):
    two_stages(world)
    await world.submit(workflow_run("r1", "wf", timeout="1m"))
    _, run = await world.look()
    assert len(await world.stage_pods()) == 1
    world.clock.advance(59)
    _, run = await world.look()
    assert overall(run)["phase"] == "Running"
    world.clock.advance(1)
    requeue, run = await world.look()
    assert overall(run)["phase"] == "Failed"
    assert overall(run)["reason"] == "Timeout"
    assert stage_status(run, "a")["phase"] == "Failed"
    assert stage_status(run, "a")["reason"] == "Timeout"
    assert stage_status(run, "b")["phase"] == "Cancelled"
    assert await world.stage_pods() == []
    assert requeue is None


async def test_a_stopped_run_is_cancelled_with_its_stages_and_its_pod_deleted(world):
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    await world.look()
    await world.edit_spec(stopped=True)
    _, run = await world.look()
    assert overall(run)["phase"] == "Cancelled"
    assert overall(run)["reason"] == "ManuallyStop"
    assert (stage_status(run, "a")["phase"], stage_status(run, "a")["reason"]) == (
        "Cancelled", "ManuallyStop")
    assert stage_status(run, "b")["phase"] == "Cancelled"
    assert await world.stage_pods() == []


async def test_a_paused_run_starts_nothing_until_it_is_resumed(world):
    two_stages(world)
    await world.submit(workflow_run("r1", "wf", paused=True))
    _, run = await world.look()
    assert overall(run)["reason"] == "ManuallyPause"
    assert stage_status(run, "a")["phase"] == "Pending"
    assert await world.stage_pods() == []
    await world.edit_spec(paused=False)
    _, run = await world.look()
    assert overall(run)["reason"] == "ManuallyResume"
    assert stage_status(run, "a")["phase"] == "Running"


async def test_a_run_beyond_the_running_limit_is_queued_until_a_slot_frees(world):
    world.config = world.config.model_copy(update={"overall": QueueLimits(max_running=1)})
    world.restart()
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    await world.look("r1")
    await world.submit(workflow_run("r2", "wf"))
    requeue, second = await world.look("r2")
    assert overall(second)["reason"] == "Queued"
    assert second["status"]["queued"] is True
    assert "deadline" not in second["status"]
    assert requeue is None
    await world.edit_spec("r1", stopped=True)
    _, first = await world.look("r1")
    assert overall(first)["phase"] == "Cancelled"
    _, second = await world.look("r2")
    assert overall(second)["phase"] == "Running"
    assert "queued" not in second["status"]


async def test_a_cluster_being_connected_is_looked_at_again_and_a_broken_one_fails_the_run(
        world):
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    world.caches.execution.pop(CLUSTER)
    world.problems[CLUSTER] = ""
    requeue, run = await world.look()
    assert requeue == 1.0
    assert stage_status(run, "a") == {}
    world.problems[CLUSTER] = "no credentials"
    requeue, run = await world.look()
    assert overall(run)["phase"] == "Failed"
    assert overall(run)["reason"] == "ExecutionClusterUnavailable"
    assert overall(run)["message"] == f"execution cluster {CLUSTER!r}: no credentials"


async def test_an_unregistered_cluster_fails_the_run(world):
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    world.caches.execution.clear()
    _, run = await world.look()
    assert overall(run)["reason"] == "ExecutionClusterNotFound"


async def test_a_cluster_unreachable_for_too_long_fails_the_run_and_cancels_its_stages(world):
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    await world.look()
    world.pods.unreachable_seconds, world.pods.last_error = 20.0, "connection refused"
    requeue, run = await world.look()
    assert overall(run)["phase"] == "Running"
    assert requeue == 1.0
    world.pods.unreachable_seconds = 29.5
    requeue, run = await world.look()
    assert requeue == pytest.approx(0.55)
    world.pods.unreachable_seconds = 30.0
    _, run = await world.look()
    assert overall(run)["message"] == (
        f"execution cluster {CLUSTER!r} has not answered for 30s: connection refused")
    assert stage_status(run, "a")["phase"] == "Failed"
    assert stage_status(run, "b")["phase"] == "Cancelled"


async def quota_of_pods(world: World, pods: int) -> None:
    """A ResourceQuota of ``pods`` pods, once in force (a kube-apiserver refuses every pod
    while a quota's status is unknown)."""
    await world.cluster.create({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "pods", "namespace": NAMESPACE},
        "spec": {"hard": {"pods": str(pods)}}}, namespace=NAMESPACE)

    async def in_force() -> bool:
        quota = await world.cluster.get(kinds.RESOURCE_QUOTA, "pods", NAMESPACE)
        return "used" in (quota.get("status") or {})

    await eventually(in_force, timeout=30)


def refusals(run: dict, stage: str = "a") -> int | None:
    return run["status"]["stages"][stage].get("quotaRefusals")


async def test_quota_refusals_are_counted_in_the_run_and_retried_after_a_doubling_backoff(
        world):
    await quota_of_pods(world, 0)
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    requeue, run = await world.look()
    assert stage_status(run, "a")["reason"] == QUOTA_REFUSED
    assert refusals(run) == 1
    assert requeue == pytest.approx(1.05)
    for seen, backoff in enumerate((1, 2, 4, 4), start=1):
        world.clock.advance(backoff - 0.01)
        _, run = await world.look()
        assert refusals(run) == seen, f"asked again before the {backoff}s backoff"
        world.clock.advance(0.02)
        _, run = await world.look()
        assert refusals(run) == seen + 1
    assert len(await world.stage_pods()) == 0


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_after_a_restart_the_quota_backoff_goes_on_from_the_stored_count(world):
    await quota_of_pods(world, 0)
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    await world.look()
    world.clock.advance(1)
    _, run = await world.look()
    world.clock.advance(2)
    _, run = await world.look()
    assert refusals(run) == 3

    world.restart()
    world.clock.advance(3.9)
    requeue, run = await world.look()
    assert refusals(run) == 3, "a restarted engine asked again before the 4s backoff"
    assert requeue == pytest.approx(0.15)
    world.clock.advance(0.1)
    _, run = await world.look()
    assert refusals(run) == 4
    assert run["status"]["stages"]["a"]["lastQuotaRefusalTime"].startswith("2030-01-01T00:00:07")


async def test_a_pod_created_after_quota_refusals_clears_their_count(world):
    await quota_of_pods(world, 0)
    two_stages(world)
    await world.submit(workflow_run("r1", "wf"))
    await world.look()
    quota = await world.cluster.get(kinds.RESOURCE_QUOTA, "pods", NAMESPACE)
    quota["spec"]["hard"]["pods"] = "5"
    await world.cluster.replace(quota)
    world.clock.advance(1.01)
    _, run = await world.look()
    assert stage_status(run, "a")["phase"] == "Running"
    assert "quotaRefusals" not in run["status"]["stages"]["a"]
    assert "lastQuotaRefusalTime" not in run["status"]["stages"]["a"]
    assert run["status"]["stages"]["a"]["attempts"] == 1


async def test_a_run_of_a_missing_workflow_or_stage_fails_without_a_pod(world):
    world.define(shell_stage("a", "true"), workflow("wf", [{"name": "a"}, {"name": "gone"}]))
    await world.submit(workflow_run("r1", "nowhere"))
    _, run = await world.look("r1")
    assert (overall(run)["reason"], overall(run)["message"]) == (
        "WorkflowNotFound", f"workflow 'nowhere' not found in {NAMESPACE}")
    await world.submit(workflow_run("r2", "wf"))
    _, run = await world.look("r2")
    assert (overall(run)["reason"], overall(run)["message"]) == (
        "StageNotFound", "stage(s) gone of workflow wf not found")
    await world.submit(workflow_run("r3", "wf", startStages=["nope"]))
    _, run = await world.look("r3")
    assert overall(run)["reason"] == "InvalidWorkflowRun"
    assert await world.stage_pods() == []
