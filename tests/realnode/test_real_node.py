"""Cyclone on a genuine node: `cyclone up --kubeconfig --local-path-provisioner` (no node
agent) against a kube-apiserver whose only node is a real kubelet with containerd and runc,
every stage in the `cyclone/toolbox` image imported from dist/images.

One plane, one node and one `cyclone up` serve the whole module (one real node runs on a
machine at a time). The independent runs start together in `batch`, and each test then reads
its own run; the quota, seed and crash cases run alone at the end, the crash case last since
it kills and restarts `cyclone up`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from support.control_plane import remote_cluster_on
from support.real_node import real_node  # noqa: F401  (the module's node fixture)
from support.realnode_flows import run_readme_ci_example, run_seed_steps
from support.realnode_kit import (
    STAGE_IMAGE,
    PodLedger,
    RunsOf,
    UpProcess,
    example,
    outputs,
    overall,
    stage_status,
    wait_for,
)

from cyclone.api import keys
from cyclone.devcluster import ControlPlane
from cyclone.devcluster.node import RealNode
from cyclone.engine.core.podbuilder import ANNOTATION_ATTEMPT
from cyclone.engine.core.timefmt import parse_rfc3339
from cyclone.kube import kinds

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(600)]

PENDING_TIMEOUT = 30
"""`--pod-pending-timeout`: long enough for every pod of a concurrent burst to start on two
busy cores, short enough for the unpullable image to fail the stage soon."""
GRACE = 10
T = TypeVar("T")
SYSTEM = keys.SYSTEM_NAMESPACE


def stage(name: str, script: str, *, image: str = STAGE_IMAGE, pod: dict | None = None,
          container: dict | None = None, **spec: object) -> dict:
    return {
        "apiVersion": keys.API_VERSION, "kind": "Stage",
        "metadata": {"name": name, "namespace": SYSTEM,
                     "labels": {keys.LABEL_PROJECT: "tier"}},
        "spec": {"pod": {"spec": {
            "containers": [{"name": "main", "image": image, "command": ["sh", "-c", script],
                            **(container or {})}],
            **(pod or {})}}, **spec},
    }


def workflow(name: str, stages: list[dict]) -> dict:
    return {"apiVersion": keys.API_VERSION, "kind": "Workflow",
            "metadata": {"name": name, "namespace": SYSTEM,
                         "labels": {keys.LABEL_PROJECT: "tier"}},
            "spec": {"stages": stages}}


def result(line: str) -> str:
    return f"echo '{line}' > /cyclone/results/__result__"


TIER = [
    {"apiVersion": keys.API_VERSION, "kind": "Project",
     "metadata": {"name": "tier", "namespace": SYSTEM}, "spec": {}},
    stage("flaky", 'echo "attempt:$ATTEMPT" > /cyclone/results/__result__; [ "$ATTEMPT" -ge 2 ]',
          retries=1, retryBackoff="1s", container={"env": [{
              "name": "ATTEMPT", "valueFrom": {"fieldRef": {
                  "fieldPath": f"metadata.annotations['{ANNOTATION_ATTEMPT}']"}}}]}),
    workflow("flaky", [{"name": "flaky"}]),
    stage("graceful",
          "trap 'echo got SIGTERM; sleep 3; echo clean exit; exit 0' TERM; echo waiting; "
          "while true; do sleep 0.2; done",
          pod={"terminationGracePeriodSeconds": GRACE}),
    workflow("stoppable", [{"name": "graceful"}]),
    stage("victim", "echo started; sleep 600"),
    workflow("victim", [{"name": "victim"}]),
    stage("unpullable", "true", image="cyclone/no-such-image:0.0.0"),
    workflow("unpullable", [{"name": "unpullable"}]),
    stage("holder", "sleep 4"),
    stage("waiter", "true"),
    workflow("quota", [{"name": "holder"}, {"name": "waiter"}]),
    *(stage(f"b{i}", f"sleep 1; {result(f'stage:b{i}')}") for i in range(3)),
    workflow("burst", [{"name": "b0"}, {"name": "b1", "depends": ["b0"]},
                       {"name": "b2", "depends": ["b0"]}]),
]


@dataclass
class Tier:
    up: UpProcess
    node: RealNode
    plane: ControlPlane
    ledger: PodLedger
    workdir: Path

    def runs(self, workflow: str, project: str = "tier") -> RunsOf:
        return RunsOf(self.up, project, workflow)


@pytest.fixture(scope="module")
def tier(real_node, tmp_path_factory) -> Iterator[Tier]:  # noqa: F811
    plane, node = real_node
    workdir = tmp_path_factory.mktemp("realnode-tier")
    up = UpProcess(workdir / "up", plane.kubeconfig, node.bridge_ip,
                   ("--pod-pending-timeout", str(PENDING_TIMEOUT)))
    up.write_engine_config({"gc_delay_seconds": 2, "gc_log_wait_seconds": 10,
                            "quota_retry_backoff_seconds": 0.5,
                            "quota_retry_max_backoff_seconds": 2})
    with PodLedger(plane.kubeconfig) as ledger:
        up.start()
        try:
            manifest = workdir / "tier.yaml"
            manifest.write_text(yaml.safe_dump_all(TIER))
            up.cli_ok("apply", "-f", str(manifest))
            yield Tier(up, node, plane, ledger, workdir)
        finally:
            up.stop()
            print(f"\ncyclone up log tail:\n{up.log_tail(15)}")


@pytest.fixture(scope="module")
def batch(tier: Tier) -> Tier:
    """The independent runs, started together."""
    diamond = tier.workdir / "diamond.yaml"
    diamond.write_text(example("diamond.yaml"))
    tier.up.cli_ok("apply", "-f", str(diamond))
    for workflow_name in ("flaky", "stoppable", "victim", "unpullable"):
        tier.runs(workflow_name).start(f"{workflow_name}-1")
    return tier


def pods_per_stage(tier: Tier, run: str) -> Counter:
    return Counter(p.stage for p in tier.ledger.pods(run, keys.POD_KIND_WORKLOAD))


def test_diamond_outputs_come_back_through_the_termination_message(batch: Tier):
    run = batch.runs("diamond", "demo").finished("diamond-run-1")
    assert overall(run)["phase"] == "Succeeded", run["status"]
    version = outputs(run, "version")["version"]
    assert version.startswith("1.4.")
    assert outputs(run, "report")["release"] == f"app-{version}-linux,app-{version}-mac"
    assert pods_per_stage(batch, "diamond-run-1") == dict.fromkeys(
        ("version", "build-linux", "build-mac", "report"), 1)


def test_readme_ci_example_checks_out_over_http_builds_tests_and_packages(batch: Tier):
    run_readme_ci_example(batch.up, batch.workdir, batch.node.bridge_ip)


def test_artifacts_between_stages_live_on_the_local_path_volume(batch: Tier):
    """ci-test and ci-package read what ci-build wrote, through the tenant PVC, which the
    local-path provisioner bound to a hostPath volume under the data dir."""
    runs = batch.runs("ci", "demo")
    run = runs.get("ci-2")
    assert overall(run)["phase"] == "Succeeded", "the CI example did not run first"

    async def claim_and_volume() -> tuple[dict, dict]:
        async with remote_cluster_on(batch.plane) as cluster:
            claim = await cluster.get(kinds.PERSISTENT_VOLUME_CLAIM,
                                      f"cyclone-pvc-{keys.DEFAULT_TENANT}", SYSTEM)
            volume = await cluster.get(kinds.PERSISTENT_VOLUME, claim["spec"]["volumeName"])
            return claim, volume

    claim, volume = _run(claim_and_volume())
    assert claim["status"]["phase"] == "Bound"
    host_dir = Path(volume["spec"]["hostPath"]["path"])
    assert host_dir.is_relative_to(batch.up.data_dir / "volumes"), host_dir
    cleaned = runs.wait("ci-2", lambda r: bool(r["status"].get("cleaned")), 90, "cleaned")
    assert cleaned["status"]["cleaned"] is True
    assert (host_dir / "workflowruns").is_dir(), sorted(p.name for p in host_dir.iterdir())
    assert not (host_dir / "workflowruns" / "ci-2").exists()


def test_stop_gives_the_running_stage_sigterm_and_its_grace_period(batch: Tier):
    runs = batch.runs("stoppable")
    runs.wait("stoppable-1", lambda r: stage_status(r, "graceful").get("phase") == "Running"
              and "waiting" in runs.logs("stoppable-1", "graceful"), 90, "a running stage")
    assert "stopped" in batch.up.cli_ok("stop", "stoppable-1", "-p", "tier")
    run = runs.finished("stoppable-1", timeout=60)
    assert overall(run)["phase"] == "Cancelled"
    assert overall(run)["reason"] == "ManuallyStop"
    log = wait_for(lambda: (text := runs.logs("stoppable-1", "graceful"))
                   and "clean exit" in text and text, 60, "the trap's lines in the log")
    assert log.index("waiting") < log.index("got SIGTERM") < log.index("clean exit")


def test_a_stage_pod_deleted_mid_stage_fails_the_stage_once(batch: Tier):
    runs = batch.runs("victim")
    run = runs.wait("victim-1", lambda r: stage_status(r, "victim").get("phase") == "Running"
                    and "started" in runs.logs("victim-1", "victim"), 90, "a running stage")
    pod = run["status"]["stages"]["victim"]["pod"]["name"]

    async def delete() -> None:
        async with remote_cluster_on(batch.plane) as cluster:
            await cluster.delete(kinds.POD, pod, SYSTEM, grace_period_seconds=0)

    _run(delete())
    run = runs.finished("victim-1", timeout=90)
    assert overall(run)["phase"] == "Failed"
    assert stage_status(run, "victim")["phase"] == "Failed"
    assert stage_status(run, "victim")["reason"] == "PodDeleted"
    assert run["status"]["stages"]["victim"]["attempts"] == 1
    assert pods_per_stage(batch, "victim-1") == {"victim": 1}


def test_a_first_attempt_that_fails_is_retried_and_the_second_passes(batch: Tier):
    run = batch.runs("flaky").finished("flaky-1", timeout=120)
    assert overall(run)["phase"] == "Succeeded", run["status"]
    assert run["status"]["stages"]["flaky"]["attempts"] == 2
    assert outputs(run, "flaky") == {"attempt": "2"}
    attempts = sorted(p.attempt for p in batch.ledger.pods("flaky-1", keys.POD_KIND_WORKLOAD))
    assert attempts == ["1", "2"]


def test_an_image_that_does_not_exist_fails_with_the_kubelets_reason(batch: Tier):
    run = batch.runs("unpullable").finished("unpullable-1", timeout=PENDING_TIMEOUT + 60)
    assert overall(run)["phase"] == "Failed"
    status = stage_status(run, "unpullable")
    assert status["phase"] == "Failed"
    assert status["reason"] in ("ErrImagePull", "ImagePullBackOff"), status
    assert "no-such-image" in status.get("message", ""), status
    took = (parse_rfc3339(overall(run)["lastTransitionTime"])
            - parse_rfc3339(overall(run)["startTime"])).total_seconds()
    assert PENDING_TIMEOUT - 2 <= took <= PENDING_TIMEOUT + 15, took


def test_the_gc_pod_runs_the_toolbox_and_the_run_is_cleaned(batch: Tier):
    runs = batch.runs("diamond", "demo")
    run = runs.wait("diamond-run-1", lambda r: bool(r["status"].get("cleaned")), 120,
                    "status.cleaned")
    assert run["status"]["cleaned"] is True
    gc_pods = batch.ledger.pods("diamond-run-1", keys.POD_KIND_GC)
    assert [p.image for p in gc_pods] == [STAGE_IMAGE], gc_pods

    async def workload_pods() -> list[dict]:
        async with remote_cluster_on(batch.plane) as cluster:
            return (await cluster.list(kinds.POD, SYSTEM, label_selector=(
                f"{keys.LABEL_WORKFLOWRUN}=diamond-run-1"))).items

    assert wait_for(lambda: _run(workload_pods()) == [] or None, 60,
                    "the run's pods deleted") is True


def test_exceeded_quota_keeps_a_stage_pending_and_retries_it(batch: Tier):
    """A real ResourceQuota of one pod: of two parallel stages one is refused and waits, then
    runs once the other has finished. The quota is set once no earlier pod counts against it
    (a pod ending after the count would let both stages in)."""
    async def live_pods() -> list[str]:
        async with remote_cluster_on(batch.plane) as cluster:
            listed = (await cluster.list(kinds.POD, SYSTEM)).items
            return [p["metadata"]["name"] for p in listed
                    if p["status"].get("phase") not in ("Succeeded", "Failed")]

    async def set_quota(pods: int | None) -> None:
        async with remote_cluster_on(batch.plane) as cluster:
            if pods is None:
                await cluster.delete(kinds.RESOURCE_QUOTA, "tier-one-more-pod", SYSTEM)
                return
            await cluster.create({"apiVersion": "v1", "kind": "ResourceQuota",
                                  "metadata": {"name": "tier-one-more-pod", "namespace": SYSTEM},
                                  "spec": {"hard": {"pods": str(pods)}}})

    for name in ("stoppable-1", "victim-1", "unpullable-1"):
        batch.runs(name.rsplit("-", 1)[0]).finished(name, timeout=120)
    still_live: list[str] = []

    def earlier_pods_ended() -> bool:
        still_live[:] = _run(live_pods())
        return not still_live

    try:
        wait_for(earlier_pods_ended, 90, "no pod of the earlier runs counted by a quota")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; pods still live: {still_live}") from None
    _run(set_quota(1))
    try:
        runs = batch.runs("quota")
        wait_for(lambda: _quota_status_seen(batch), 30, "the quota's usage")
        runs.start("quota-1")
        refused = runs.wait("quota-1", lambda r: any(
            stage_status(r, s).get("reason") == "RetryOnExceededQuotaTimeout"
            for s in ("holder", "waiter")), 60, "a refusal for exceeded quota")
        waiting = next(s for s in ("holder", "waiter")
                       if stage_status(refused, s).get("reason") == "RetryOnExceededQuotaTimeout")
        assert stage_status(refused, waiting)["phase"] == "Pending"
        assert "exceeded quota" in stage_status(refused, waiting)["message"]
        run = runs.finished("quota-1", timeout=120)
    finally:
        _run(set_quota(None))
    assert overall(run)["phase"] == "Succeeded", run["status"]
    assert pods_per_stage(batch, "quota-1") == {"holder": 1, "waiter": 1}


def test_the_seed_steps_run_on_the_real_node(batch: Tier):
    """The seed's "Running a Workflow Step by Step" (as tests/server/test_seed_flow.py),
    with the control cluster as the tenant's execution cluster."""
    run_seed_steps(batch.up, batch.plane)


def test_sigkill_of_cyclone_up_mid_burst_loses_no_run_and_doubles_no_pod(batch: Tier):
    """`cyclone up` is SIGKILLed the moment the cluster shows a new pod of the burst (its
    status write may not have landed yet), three times, and started again each time."""
    runs = batch.runs("burst")
    names = [f"burst-{i}" for i in range(6)]

    def burst_pods() -> list:
        return [p for p in batch.ledger.pods(kind=keys.POD_KIND_WORKLOAD) if p.run in names]

    for name in names:
        runs.start(name)
    kills_mid_run = 0
    for _ in range(3):
        seen = len(burst_pods())
        if seen >= len(names) * 3:
            break
        wait_for(lambda count=seen: len(burst_pods()) > count, 60, "a new pod of the burst",
                 interval=0.01)
        batch.up.kill()
        kills_mid_run += len(burst_pods()) < len(names) * 3
        batch.up.start()
    finished = {name: runs.finished(name, timeout=120) for name in names}
    assert kills_mid_run, "every run of the burst ended before the kills"
    assert {n: overall(r)["phase"] for n, r in finished.items()} == dict.fromkeys(
        names, "Succeeded")
    for name, run in finished.items():
        assert {s: outputs(run, s) for s in ("b0", "b1", "b2")} == {
            s: {"stage": s} for s in ("b0", "b1", "b2")}, name
    per_stage = Counter((p.run, p.stage) for p in burst_pods())
    assert per_stage == {(n, s): 1 for n in names for s in ("b0", "b1", "b2")}


def _quota_status_seen(tier: Tier) -> bool:
    async def seen() -> bool:
        async with remote_cluster_on(tier.plane) as cluster:
            quota = await cluster.get(kinds.RESOURCE_QUOTA, "tier-one-more-pod", SYSTEM)
            return "pods" in ((quota.get("status") or {}).get("used") or {})

    return _run(seen())


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
