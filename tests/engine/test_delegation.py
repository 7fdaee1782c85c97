"""Delegation stages: POSTed out, Waiting meanwhile, finished by the callback or a timeout."""

from __future__ import annotations

import pytest

from cyclone.engine.core.delegation import DelegationRejected
from cyclone.kube import kinds
from cyclone.kube.clock import ManualClock
from cyclone.kube.errors import Forbidden
from cyclone.server.delegation import report_delegation_result

from .harness import (
    NAMESPACE,
    allow_local_addresses,
    delegation_stage,
    overall,
    running_env,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)
from .receiver import http_receiver


async def start_delegated_run(env, receiver, wait_for: str | None = None) -> dict:
    await allow_local_addresses(env.cluster)
    await env.apply(
        delegation_stage("approve", receiver.url, wait_for),
        shell_stage("parallel", "true"),
        shell_stage("deploy", "echo \"by:${stages.approve.outputs.approver}\" "
                              "> /cyclone/results/__result__"),
        workflow("wf", [{"name": "approve"}, {"name": "parallel"},
                        {"name": "deploy", "depends": ["approve"]}]),
        workflow_run("r1", "wf"),
    )
    [request] = await receiver.wait_for(1)
    return request


async def test_delegation_success_continues_the_dag(env):
    async with http_receiver() as receiver:
        request = await start_delegated_run(env, receiver)
        assert request["stage"] == "approve"
        assert request["workflow"] == "wf"
        assert request["workflowrun"] == "r1"
        assert request["callbackURL"].endswith(f"/delegations/{NAMESPACE}/r1/approve")
        run = await env.wait_run(
            "r1", lambda r: stage_status(r, "parallel").get("phase") == "Succeeded"
        )
        assert stage_status(run, "approve")["phase"] == "Waiting"
        assert overall(run)["phase"] == "Waiting"

        await report_delegation_result(
            env.cluster, NAMESPACE, "r1", "approve", request["token"], True, "approved",
            {"approver": "alice"},
        )
        run = await env.wait_phase("r1", "Succeeded", "Failed")
    assert overall(run)["phase"] == "Succeeded"
    assert stage_status(run, "approve")["reason"] == "DelegationSucceed"
    deploy = run["status"]["stages"]["deploy"]["outputs"]
    assert deploy == [{"key": "by", "value": "alice"}]


async def test_delegation_failure_fails_the_run(env):
    async with http_receiver() as receiver:
        request = await start_delegated_run(env, receiver)
        await env.wait_run("r1", lambda r: stage_status(r, "approve").get("phase") == "Waiting")
        await report_delegation_result(
            env.cluster, NAMESPACE, "r1", "approve", request["token"], False, "rejected"
        )
        run = await env.wait_phase("r1", "Failed")
    approve = stage_status(run, "approve")
    assert (approve["reason"], approve["message"]) == ("DelegationFailure", "rejected")
    assert stage_status(run, "deploy")["phase"] == "Cancelled"


async def test_delegation_timeout_fails_the_stage(tmp_path):
    clock = ManualClock()
    async with http_receiver() as receiver, running_env(tmp_path, clock=clock) as env:
        await start_delegated_run(env, receiver, wait_for="30m")
        await env.wait_run("r1", lambda r: stage_status(r, "parallel").get("phase") == "Succeeded")
        for moment in (0, 1799.9):
            clock.advance(moment - clock.monotonic())
            run = await env.looked_at("r1")
            assert stage_status(run, "approve")["phase"] == "Waiting", run["status"]
        clock.advance(0.2)
        run = await env.wait_phase("r1", "Failed")
    assert stage_status(run, "approve")["phase"] == "Failed"
    assert stage_status(run, "approve")["reason"] == "Timeout"
    assert stage_status(run, "parallel")["phase"] == "Succeeded"
    assert stage_status(run, "deploy")["phase"] == "Cancelled"


async def test_delegation_callback_checks_token_and_state(env):
    async with http_receiver() as receiver:
        request = await start_delegated_run(env, receiver)
        await env.wait_run("r1", lambda r: stage_status(r, "approve").get("phase") == "Waiting")
        with pytest.raises(Forbidden):
            await report_delegation_result(
                env.cluster, NAMESPACE, "r1", "approve", "0" * 64, True
            )
        with pytest.raises(Forbidden):
            await report_delegation_result(
                env.cluster, NAMESPACE, "r1", "deploy", request["token"], True
            )
        await report_delegation_result(
            env.cluster, NAMESPACE, "r1", "approve", request["token"], True, "", "approver:bob"
        )
        with pytest.raises(DelegationRejected):
            await report_delegation_result(
                env.cluster, NAMESPACE, "r1", "approve", request["token"], False
            )
        await env.wait_phase("r1", "Succeeded")


async def test_unreachable_delegation_url_fails_the_stage(env):
    await allow_local_addresses(env.cluster)
    await env.apply(
        delegation_stage("approve", "http://127.0.0.1:9/nowhere"),
        workflow("wf", [{"name": "approve"}]),
        workflow_run("r1", "wf"),
    )
    run = await env.wait_phase("r1", "Failed")
    assert stage_status(run, "approve")["reason"] == "DelegationFailure"


async def test_a_local_delegation_url_is_refused_unless_the_tenant_allows_it(env):
    async with http_receiver() as receiver:
        await env.apply(
            delegation_stage("approve", receiver.url),
            workflow("wf", [{"name": "approve"}]),
            workflow_run("r1", "wf"),
        )
        run = await env.wait_phase("r1", "Failed")
        status = stage_status(run, "approve")
        assert status["reason"] == "DelegationFailure"
        assert "refused" in status["message"] and "loopback" in status["message"]
        assert receiver.bodies == []
        await allow_local_addresses(env.cluster)
        await env.apply(workflow_run("r2", "wf"))
        [request] = await receiver.wait_for(1)
    assert request["workflowrun"] == "r2"


@pytest.mark.parametrize("answer", [200, 500])
async def test_a_run_changed_while_the_request_is_in_flight_gets_one_request(env, answer):
    """The write that records the POST meets a Conflict: the record is made again on the
    run as it is now, never by POSTing again."""
    async with http_receiver(status=answer) as receiver:

        async def change_the_run(_index: int) -> None:
            await env.cluster.patch(kinds.WORKFLOW_RUN, "r1", {"metadata": {"annotations": {
                "example.com/touched": "yes"}}}, NAMESPACE)

        receiver.on_request = change_the_run
        await allow_local_addresses(env.cluster)
        await env.apply(
            delegation_stage("approve", receiver.url),
            workflow("wf", [{"name": "approve"}]),
            workflow_run("r1", "wf"),
        )
        run = await env.wait_run("r1", lambda r: (((r.get("status") or {}).get(
            "stages") or {}).get("approve", {}).get("delegation") or {}).get("sent"))
        run = await env.looked_at("r1")
        assert len(receiver.bodies) == 1, receiver.bodies
    assert run["metadata"]["annotations"]["example.com/touched"] == "yes"
    expected = "Waiting" if answer == 200 else "Failed"
    assert stage_status(run, "approve")["phase"] == expected, run["status"]
