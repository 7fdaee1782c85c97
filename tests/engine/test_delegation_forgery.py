"""A tenant may edit the annotations of its own runs: a delegation result it writes there
itself, instead of an outside system reporting through the server, changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cyclone.engine.core.delegation import result_annotation
from cyclone.engine.core.timefmt import rfc3339
from cyclone.kube import kinds
from cyclone.server.delegation import report_delegation_result

from .harness import (
    BACKENDS,
    NAMESPACE,
    allow_local_addresses,
    delegation_stage,
    outputs,
    stage_status,
    workflow,
    workflow_run,
)
from .receiver import http_receiver

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def waiting(run: dict, *stages: str) -> bool:
    entries = (run.get("status") or {}).get("stages") or {}
    return all(stage_status(run, s).get("phase") == "Waiting"
               and (entries[s].get("delegation") or {}).get("sent") is True for s in stages)


async def annotate(env, run: str, stage: str, value: str) -> None:
    """What the tenant can do with kubectl: write the result annotation of its run."""
    await env.cluster.patch(kinds.WORKFLOW_RUN, run, {
        "metadata": {"annotations": {result_annotation(stage): value}}}, NAMESPACE)


def approval(signature: str | None) -> str:
    result = {"phase": "Succeeded", "message": "approved", "reportedAt": rfc3339(
        datetime.now(UTC)), "outputs": [{"key": "approver", "value": "mallory"}]}
    if signature is not None:
        result["signature"] = signature
    return json.dumps(result)


async def test_a_result_annotation_the_tenant_writes_itself_changes_no_stage(env):
    async with http_receiver() as receiver:
        await allow_local_addresses(env.cluster)
        await env.apply(
            delegation_stage("approve", receiver.url), delegation_stage("hold", receiver.url),
            workflow("gate", [{"name": "approve"}, {"name": "hold"}]),
            workflow_run("r1", "gate"), workflow_run("r2", "gate"))
        tokens = {(b["workflowrun"], b["stage"]): b["token"]
                  for b in await receiver.wait_for(4)}
        for name in ("r1", "r2"):
            await env.wait_run(name, lambda r: waiting(r, "approve", "hold"))

        await report_delegation_result(env.cluster, NAMESPACE, "r1", "hold",
                                       tokens[("r1", "hold")], True, "approved")
        await report_delegation_result(env.cluster, NAMESPACE, "r2", "approve",
                                       tokens[("r2", "approve")], True, "approved")
        r1 = await env.wait_run("r1", lambda r: stage_status(r, "hold").get("phase")
                                == "Succeeded")
        r2 = await env.wait_run("r2", lambda r: stage_status(r, "approve").get("phase")
                                == "Succeeded")
        forgeries = {
            "no signature": approval(None),
            "a wrong signature": approval("0" * 64),
            "the stage's own token as signature": approval(tokens[("r1", "approve")]),
            "a record signed for another stage": r1["metadata"]["annotations"][
                result_annotation("hold")],
            "a record signed for another run": r2["metadata"]["annotations"][
                result_annotation("approve")],
        }
        for what, value in forgeries.items():
            await annotate(env, "r1", "approve", value)
            run = await env.looked_at("r1")
            assert stage_status(run, "approve")["phase"] == "Waiting", what
            assert outputs(run, "approve") == {}, what

        await report_delegation_result(env.cluster, NAMESPACE, "r1", "approve",
                                       tokens[("r1", "approve")], False, "rejected")
        run = await env.wait_phase("r1", "Failed")
    assert (stage_status(run, "approve")["reason"], stage_status(run, "approve")["message"]) \
        == ("DelegationFailure", "rejected")
