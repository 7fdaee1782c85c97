"""Delegation end to end over HTTP: the engine POSTs to an outside system on 127.0.0.1, and
that system reports through the callback URL it was given, which is the real server's
route, on the embedded cluster and on a real kube-apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cyclone.engine.core.delegation import INVALID_TOKEN
from cyclone.kube.clock import ManualClock

from .harness import (
    BACKENDS,
    NAMESPACE,
    delegation_stage,
    outputs,
    overall,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)
from .receiver import Receiver, http_receiver
from .served import Served, free_port, served_env

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
REPO = Path(__file__).parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture
async def served(tmp_path, backend):
    async with served_env(tmp_path, backend) as running:
        yield running


@pytest.fixture
async def receiver():
    """The outside system's endpoint; it records the engine's requests and answers 200."""
    async with http_receiver() as running:
        yield running


async def requests_of(receiver: Receiver, count: int) -> dict[tuple[str, str], dict]:
    """The engine's first `count` delegation requests, by (run, stage)."""
    bodies = await receiver.wait_for(count)
    return {(b["workflowrun"], b["stage"]): b for b in bodies}


def waiting_and_sent(run: dict, *stages: str) -> bool:
    """Every stage named is Waiting and its request is sent: the engine has nothing more
    to write to the run until a report or a deadline."""
    entries = (run.get("status") or {}).get("stages") or {}
    return all(
        stage_status(run, s).get("phase") == "Waiting"
        and (entries[s].get("delegation") or {}).get("sent") is True
        for s in stages
    )


def version(run: dict) -> str:
    return run["metadata"]["resourceVersion"]


async def report(served: Served, request: dict, phase: str, **fields: object):
    """What an outside system does: PUT the result to the callback URL it was sent."""
    return await served.http.put(request["callbackURL"], json={
        "phase": phase, "token": request["token"], **fields})


async def start_gated_run(served: Served, receiver: Receiver, approve_timeout: str | None = None,
                          runs: tuple[str, ...] = ("r1",)) -> dict[tuple[str, str], dict]:
    """Runs of `approve` and `hold`, two delegation stages side by side, so that one of them
    still waits (and keeps its run open) while the test reports on the other."""
    await served.env.apply(
        delegation_stage("approve", receiver.url, approve_timeout),
        delegation_stage("hold", receiver.url),
        workflow("gate", [{"name": "approve"}, {"name": "hold"}]),
        *(workflow_run(name, "gate") for name in runs),
    )
    return await requests_of(receiver, 2 * len(runs))


async def test_a_result_reported_through_the_server_reaches_the_downstream_stage(served, receiver):
    env = served.env
    await env.apply(
        delegation_stage("approve", receiver.url),
        shell_stage("deploy", "echo \"by:${stages.approve.outputs.approver}\" "
                              "> /cyclone/results/__result__"),
        workflow("wf", [{"name": "approve"}, {"name": "deploy", "depends": ["approve"]}]),
        workflow_run("r1", "wf"),
    )
    request = (await requests_of(receiver, 1))[("r1", "approve")]
    assert request["callbackURL"] == (
        f"{served.base_url}/apis/v1alpha1/delegations/{NAMESPACE}/r1/approve")

    response = await report(served, request, "Succeeded", message="approved",
                            outputs={"approver": "alice"})
    assert response.status_code == 200, response.text
    assert response.json()["status"]["phase"] == "Succeeded"

    run = await env.wait_phase("r1", "Succeeded", within=60)
    approve = stage_status(run, "approve")
    assert (approve["reason"], approve["message"]) == ("DelegationSucceed", "approved")
    assert outputs(run, "approve") == {"approver": "alice"}
    assert outputs(run, "deploy") == {"by": "alice"}


async def test_a_failure_reported_through_the_server_fails_the_run(served, receiver):
    env = served.env
    await env.apply(
        delegation_stage("approve", receiver.url),
        shell_stage("deploy", "true"),
        workflow("wf", [{"name": "approve"}, {"name": "deploy", "depends": ["approve"]}]),
        workflow_run("r1", "wf"),
    )
    request = (await requests_of(receiver, 1))[("r1", "approve")]

    response = await served.http.post(
        request["callbackURL"], headers={"X-Delegation-Token": request["token"]},
        json={"phase": "Failed", "message": "rejected"})
    assert response.status_code == 200, response.text

    run = await env.wait_phase("r1", "Failed")
    approve = stage_status(run, "approve")
    assert (approve["reason"], approve["message"]) == ("DelegationFailure", "rejected")
    assert stage_status(run, "deploy")["phase"] == "Cancelled"


async def test_a_wrong_token_gets_403_and_leaves_the_run_untouched(served, receiver):
    env = served.env
    requests = await start_gated_run(served, receiver, runs=("r1", "r2"))
    for name in ("r1", "r2"):
        await env.wait_run(name, lambda r: waiting_and_sent(r, "approve", "hold"))
    target = requests[("r1", "approve")]
    before = await env.run("r1")

    wrong = {
        "a made-up token": "0" * 64,
        "the token of another stage of the run": requests[("r1", "hold")]["token"],
        "the token of the same stage of another run": requests[("r2", "approve")]["token"],
    }
    for what, token in wrong.items():
        response = await report(served, target | {"token": token}, "Succeeded",
                                outputs={"approver": "mallory"})
        assert response.status_code == 403, (what, response.text)
        assert response.json() == {"message": INVALID_TOKEN, "reason": "Forbidden"}, what

    after = await env.run("r1")
    assert version(after) == version(before)
    assert stage_status(after, "approve")["phase"] == "Waiting"
    assert outputs(after, "approve") == {}

    response = await report(served, target, "Succeeded", outputs={"approver": "alice"})
    assert response.status_code == 200, response.text
    run = await env.wait_run("r1", lambda r: stage_status(r, "approve").get("phase")
                             == "Succeeded")
    assert outputs(run, "approve") == {"approver": "alice"}


async def test_a_callback_after_the_timeout_is_refused_and_the_stage_stays_timed_out(
        served, receiver):
    env = served.env
    requests = await start_gated_run(served, receiver, approve_timeout="1s")
    approve, hold = requests[("r1", "approve")], requests[("r1", "hold")]
    timed_out = await env.wait_run(
        "r1", lambda r: stage_status(r, "approve").get("phase") == "Failed")
    assert stage_status(timed_out, "approve")["reason"] == "Timeout"
    assert overall(timed_out)["phase"] not in ("Succeeded", "Failed", "Cancelled")

    response = await report(served, approve, "Succeeded", outputs={"approver": "late"})
    assert response.status_code == 409, response.text
    assert response.json() == {"reason": "Conflict",
                               "message": "stage approve of r1 is Failed, not Waiting"}
    after = await env.run("r1")
    assert version(after) == version(timed_out)
    assert after["status"]["stages"]["approve"] == timed_out["status"]["stages"]["approve"]

    response = await report(served, hold, "Succeeded")
    assert response.status_code == 200, response.text
    run = await env.wait_phase("r1", "Failed")
    response = await report(served, approve, "Succeeded", outputs={"approver": "late"})
    assert response.status_code == 409, response.text
    assert response.json()["message"] == "workflowrun r1 has finished"
    assert (await env.run("r1"))["status"] == run["status"]
    assert stage_status(run, "approve")["reason"] == "Timeout"
    assert outputs(run, "approve") == {}


async def expired(env, clock: ManualClock, run_name: str, stage: str) -> dict:
    """The run once `stage` has failed, moving the engine's clock a second at a time: the
    engine arms its deadline timer in its own reconcile, which may come after the test has
    seen the stage waiting, so one jump of the clock could land before the timer exists."""
    for _ in range(60):
        clock.advance(1)
        try:
            return await env.wait_run(run_name, lambda r: stage_status(r, stage).get("phase")
                                      == "Failed", within=1.0)
        except AssertionError:
            continue
    return await env.wait_run(run_name, lambda r: stage_status(r, stage).get("phase")
                              == "Failed")


async def test_a_callback_past_the_deadline_is_refused_before_the_engine_expires_the_stage(
        tmp_path, backend, receiver):
    """The engine's clock stands an hour behind: the stage's deadline has passed for the
    server, not yet for the engine, as when the engine is down or lags at that moment."""
    clock = ManualClock(start=datetime.now(UTC) - timedelta(hours=1))
    async with served_env(tmp_path, backend, clock) as served:
        env = served.env
        requests = await start_gated_run(served, receiver, approve_timeout="10s")
        approve = requests[("r1", "approve")]
        waiting = await env.wait_run("r1", lambda r: waiting_and_sent(r, "approve", "hold"))
        deadline = waiting["status"]["stages"]["approve"]["delegation"]["deadline"]

        response = await report(served, approve, "Succeeded", outputs={"approver": "late"})
        assert response.status_code == 409, response.text
        assert response.json() == {
            "reason": "Conflict",
            "message": f"stage approve of r1 timed out at {deadline}, before this report"}
        after = await env.run("r1")
        assert version(after) == version(waiting)
        assert stage_status(after, "approve")["phase"] == "Waiting"

        run = await expired(env, clock, "r1", "approve")
    assert stage_status(run, "approve")["reason"] == "Timeout"
    assert outputs(run, "approve") == {}


async def test_a_second_callback_after_success_is_refused_and_changes_nothing(served, receiver):
    env = served.env
    requests = await start_gated_run(served, receiver)
    approve, hold = requests[("r1", "approve")], requests[("r1", "hold")]
    await env.wait_run("r1", lambda r: waiting_and_sent(r, "approve", "hold"))

    response = await report(served, approve, "Succeeded", outputs={"approver": "alice"})
    assert response.status_code == 200, response.text
    approved = await env.looked_at("r1")
    assert stage_status(approved, "approve")["phase"] == "Succeeded"

    response = await report(served, approve, "Failed", message="changed my mind")
    assert response.status_code == 409, response.text
    assert response.json()["message"] == "stage approve of r1 is Succeeded, not Waiting"
    after = await env.run("r1")
    assert version(after) == version(approved)
    assert after["status"]["stages"]["approve"] == approved["status"]["stages"]["approve"]

    response = await report(served, hold, "Succeeded")
    assert response.status_code == 200, response.text
    run = await env.wait_phase("r1", "Succeeded")
    response = await report(served, approve, "Failed", message="changed my mind")
    assert response.status_code == 409, response.text
    assert response.json()["message"] == "workflowrun r1 has finished"
    assert (await env.run("r1"))["status"] == run["status"]
    assert outputs(run, "approve") == {"approver": "alice"}


@contextlib.asynccontextmanager
async def approver(port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python examples/approver.py --port PORT`, as the README starts it (HTTP mode),
    once it says it listens."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "approver.py"), "--port", str(port), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line.decode().startswith(f"approver listening on http://127.0.0.1:{port}"), line
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def cyclone_cli(served: Served, scratch: Path, *args: str) -> str:
    """The `cyclone` command of this virtualenv against the test's server."""
    environment = os.environ | {
        "CYCLONE_CONFIG": str(scratch / "cli-config.yaml"),
        "CYCLONE_SERVER": served.base_url,
        "CYCLONE_TOKEN": served.admin_token,
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "cyclone"), *args, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_the_approver_example_approves_through_the_server(served, tmp_path):
    port = free_port()
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "delegation.yaml").read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Stage" and "delegation" in doc["spec"]:
            assert doc["spec"]["delegation"]["url"] == "http://127.0.0.1:8099/approve"
            doc["spec"]["delegation"]["url"] = f"http://127.0.0.1:{port}/approve"
    manifest = tmp_path / "delegation.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    run_name = next(d["metadata"]["name"] for d in docs if d["kind"] == "WorkflowRun")

    async with approver(port) as process:
        await cyclone_cli(served, tmp_path, "apply", "-f", str(manifest))
        run = await served.env.wait_phase(run_name, "Succeeded", within=60)
        said = await asyncio.wait_for(process.stdout.readline(), 10)
    assert said.decode().strip() == f"approving stage approval of {run_name}"
    approval = stage_status(run, "approval")
    assert (approval["reason"], approval["message"]) == ("DelegationSucceed",
                                                         "approved by alice")
    assert outputs(run, "approval") == {"approver": "alice"}
    assert outputs(run, "deploy") == {"deployed": "approved-by-alice"}
