"""Runs under control: stop, pause/resume, timeouts, deleted pods, retries, quota."""

from __future__ import annotations

import pytest

from cyclone.api import keys
from cyclone.kube import kinds

from .gates import Counter, Gate
from .harness import (
    BACKENDS,
    NAMESPACE,
    overall,
    quota_of_pods,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def gate_script(gate, then: str = "true") -> str:
    """Wait until the test opens ``gate`` (a `Gate`; a path is a gate never opened), then run
    ``then``."""
    check = gate.check() if isinstance(gate, Gate) else f"[ -e {gate} ]"
    return f"until {check}; do sleep 0.05; done; {then}"


def stage_entry(run: dict, name: str) -> dict:
    return ((run.get("status") or {}).get("stages") or {}).get(name) or {}


def stage_running(name: str):
    def check(run: dict) -> bool:
        return stage_status(run, name).get("phase") == "Running" and bool(
            run["status"]["stages"][name].get("pod")
        )

    return check


async def pod_gone(env, name: str) -> bool:
    return all(p["metadata"]["name"] != name for p in await env.pods())


async def test_forced_stop_cancels_run_and_deletes_pods_at_once(env, tmp_path):
    await env.apply(
        shell_stage("long", gate_script(tmp_path / "never")),
        workflow("wf", [{"name": "long"}, {"name": "after", "depends": ["long"]}]),
        shell_stage("after", "true"),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_run("r1", stage_running("long"))
    pod_name = run["status"]["stages"]["long"]["pod"]["name"]
    await env.cluster.patch(kinds.WORKFLOW_RUN, "r1", {
        "metadata": {"annotations": {keys.ANNOTATION_STOP_FORCE: "true"}},
        "spec": {"stopped": True}}, NAMESPACE)
    run = await env.wait_phase("r1", "Cancelled")
    assert overall(run)["reason"] == "ManuallyStop"
    assert stage_status(run, "long")["phase"] == "Cancelled"
    assert stage_status(run, "long")["reason"] == "ManuallyStop"
    assert stage_status(run, "after")["phase"] == "Cancelled"
    assert "pod" not in run["status"]["stages"]["after"]
    assert await pod_gone(env, pod_name)


async def test_pause_holds_new_stages_until_resume(env, tmp_path):
    gate = Gate()
    await env.apply(
        shell_stage("first", gate_script(gate)),
        shell_stage("second", "true"),
        workflow("wf", [{"name": "first"}, {"name": "second", "depends": ["first"]}]),
        workflow_run("r1", "wf"),
    )
    await env.wait_run("r1", stage_running("first"))
    await env.cluster.patch(kinds.WORKFLOW_RUN, "r1", {"spec": {"paused": True}}, NAMESPACE)
    await env.wait_run("r1", lambda r: overall(r).get("reason") == "ManuallyPause")
    gate.touch()
    run = await env.wait_run("r1", lambda r: stage_status(r, "first").get("phase") == "Succeeded")
    assert stage_status(run, "second")["phase"] == "Pending"
    assert "pod" not in run["status"]["stages"]["second"]
    assert overall(run)["phase"] == "Running"
    assert overall(run)["reason"] == "ManuallyPause"

    await env.cluster.patch(kinds.WORKFLOW_RUN, "r1", {"spec": {"paused": False}}, NAMESPACE)
    run = await env.wait_phase("r1", "Succeeded", "Failed")
    assert overall(run)["phase"] == "Succeeded"
    assert stage_status(run, "second")["phase"] == "Succeeded"


async def test_resume_is_recorded_while_run_continues(env, tmp_path):
    gate = Gate()
    await env.apply(
        shell_stage("first", gate_script(gate)),
        workflow("wf", [{"name": "first"}]),
        workflow_run("r1", "wf"),
    )
    await env.wait_run("r1", stage_running("first"))
    await env.cluster.patch(kinds.WORKFLOW_RUN, "r1", {"spec": {"paused": True}}, NAMESPACE)
    await env.wait_run("r1", lambda r: overall(r).get("reason") == "ManuallyPause")
    await env.cluster.patch(kinds.WORKFLOW_RUN, "r1", {"spec": {"paused": False}}, NAMESPACE)
    run = await env.wait_run("r1", lambda r: overall(r).get("reason") == "ManuallyResume")
    assert overall(run)["phase"] == "Running"
    gate.touch()
    await env.wait_phase("r1", "Succeeded")


async def test_timeout_fails_run_and_deletes_pods(env, tmp_path):
    await env.apply(
        shell_stage("slow", gate_script(tmp_path / "never")),
        workflow("wf", [{"name": "slow"}]),
        workflow_run("r1", "wf", timeout="2s"),
    )
    run = await env.wait_run("r1", lambda r: bool(stage_entry(r, "slow").get("pod")))
    pod_name = run["status"]["stages"]["slow"]["pod"]["name"]
    run = await env.wait_phase("r1", "Failed", within=60)
    assert overall(run)["reason"] == "Timeout"
    assert stage_status(run, "slow")["reason"] == "Timeout"
    assert await pod_gone(env, pod_name)


async def test_pod_deleted_mid_stage_fails_stage(env, tmp_path):
    await env.apply(
        shell_stage("victim", gate_script(tmp_path / "never")),
        workflow("wf", [{"name": "victim"}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_run("r1", stage_running("victim"))
    pod_name = run["status"]["stages"]["victim"]["pod"]["name"]
    await env.cluster.delete(kinds.POD, pod_name, NAMESPACE, grace_period_seconds=0)
    run = await env.wait_phase("r1", "Failed")
    assert stage_status(run, "victim")["phase"] == "Failed"
    assert stage_status(run, "victim")["reason"] == "PodDeleted"


async def test_failed_attempts_are_retried_with_new_pods(env, tmp_path):
    counter = Counter()
    script = (
        f"n=$(curl -fsS {counter.url}); "
        "echo \"attempt:$n\" > /cyclone/results/__result__; [ $n -ge 3 ]"
    )
    await env.apply(
        shell_stage("flaky", script, retries=3, retryBackoff="50ms"),
        workflow("wf", [{"name": "flaky"}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_phase("r1", "Succeeded", "Failed")
    assert overall(run)["phase"] == "Succeeded", run["status"]
    entry = run["status"]["stages"]["flaky"]
    assert entry["attempts"] == 3
    assert {o["key"]: o["value"] for o in entry["outputs"]} == {"attempt": "3"}
    names = {p["metadata"]["name"] for p in await env.pods("stage.cyclone.dev/name=flaky")}
    assert len(names) == 3
    assert entry["pod"]["name"] in names


async def test_retries_exhausted_fail_the_stage(env):
    await env.apply(
        shell_stage("broken", "exit 1", retries=1, retryBackoff="10ms"),
        workflow("wf", [{"name": "broken"}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_phase("r1", "Failed")
    assert run["status"]["stages"]["broken"]["attempts"] == 2
    assert stage_status(run, "broken")["reason"] == "PodFailed"


async def test_exceeded_quota_keeps_stage_pending_and_retries(env, tmp_path):
    gate = Gate()
    await quota_of_pods(env.cluster, 1)
    await env.apply(
        shell_stage("holder", gate_script(gate)),
        shell_stage("waiter", "true"),
        workflow("wf", [{"name": "holder"}, {"name": "waiter"}]),
        workflow_run("r1", "wf"),
    )

    def refused(run: dict) -> bool:
        return any(
            stage_status(run, s).get("reason") == "RetryOnExceededQuotaTimeout"
            for s in ("holder", "waiter")
        )

    run = await env.wait_run("r1", refused)
    waiting = next(s for s in ("holder", "waiter")
                   if stage_status(run, s).get("reason") == "RetryOnExceededQuotaTimeout")
    assert stage_status(run, waiting)["phase"] == "Pending"
    assert overall(run)["phase"] == "Running"
    gate.touch()
    run = await env.wait_phase("r1", "Succeeded", "Failed")
    assert overall(run)["phase"] == "Succeeded"
