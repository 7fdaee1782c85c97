"""The callback through which an outside system reports a delegation stage's result.

It takes no bearer token: the stage's delegation token authorises it. A wrong token, a
namespace that is not a tenant's and a run that does not exist all get the same 403 and
body, so that the route tells nothing about what exists to whoever lacks the token.

The server only records the answer on the run, signed (`cyclone.engine.core.delegation`);
the engine turns it into the stage's status. The answer's body already says the status
the stage takes."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from cyclone.api import keys
from cyclone.engine.core.delegation import (
    INVALID_TOKEN,
    Answer,
    DelegationRejected,
    refuse_report,
    reported_result,
    result_annotation,
    signed_record,
    stage_status_for,
)
from cyclone.engine.core.phases import SUCCEEDED
from cyclone.engine.core.tokens import Purpose
from cyclone.engine.runstages import read_run_stage
from cyclone.engine.signing import DEFAULT_KEY_NAMESPACE, token_key
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import server_state
from cyclone.server.objects import DNS_LABEL
from cyclone.server.state import ServerState

WRITE_ATTEMPTS = 10

router = APIRouter(tags=["delegation"])


class DelegationResult(BaseModel):
    """What the outside system reports. `phase` (Succeeded/Failed) or `succeeded` says how
    the stage ended; `outputs` are `[{key, value}]`, a mapping, or `key:value` lines."""

    model_config = ConfigDict(extra="ignore")

    phase: str | None = Field(default=None, pattern=r"^(Succeeded|Failed)$")
    succeeded: bool | None = None
    message: str = Field(default="", max_length=4096)
    outputs: list[dict[str, Any]] | dict[str, Any] | str | None = None
    token: str | None = Field(default=None, max_length=256)


def _succeeded(result: DelegationResult) -> bool:
    if result.phase is not None:
        return result.phase == SUCCEEDED
    if result.succeeded is None:
        raise errors.BadRequest("report phase (Succeeded or Failed) or succeeded (true/false)")
    return result.succeeded


def _outputs(outputs: Any) -> Any:
    if isinstance(outputs, list):
        for index, item in enumerate(outputs):
            if "key" not in item:
                raise errors.BadRequest(f"outputs[{index}]: key is required")
    return outputs


async def report_delegation_result(
    cluster: Cluster,
    namespace: str,
    run: str,
    stage: str,
    token: str,
    succeeded: bool,
    message: str = "",
    outputs: list[dict] | dict | str | None = None,
    *,
    key_namespace: str | None = None,
) -> dict:
    """Record on the run what the outside system reported for a Waiting delegation stage,
    for the engine to take; returns the status the stage takes from it.

    ``outputs`` may be ``[{key, value}]``, a mapping, or ``key:value`` lines. Raises
    `Forbidden` with one message whether the namespace is not a tenant's, the run does not
    exist (or is another run under the same name) or the token is wrong, so that the answer
    reveals nothing; then `NotFound` (the stage has not started) and `DelegationRejected`
    (the stage or the run already ended, the stage's deadline has passed even if the
    engine has not failed it yet, or a result of the stage is recorded already).
    """
    key = await token_key(cluster, key_namespace or DEFAULT_KEY_NAMESPACE, Purpose.DELEGATION)
    for _ in range(WRITE_ATTEMPTS):
        obj = None
        if keys.is_tenant_namespace(namespace):
            with contextlib.suppress(errors.NotFound, errors.BadRequest, errors.Invalid):
                obj = await read_run_stage(
                    cluster, await cluster.get(kinds.WORKFLOW_RUN, run, namespace), stage)
        now = datetime.now(UTC)
        refused = refuse_report(obj, stage, token, key, now)
        if refused is not None:
            if refused.answer is Answer.FORBIDDEN:
                raise errors.Forbidden(refused.message)
            if refused.answer is Answer.NOT_STARTED:
                raise errors.NotFound(refused.message)
            raise DelegationRejected(refused.message)
        assert obj is not None
        meta = obj["metadata"]
        result = reported_result(succeeded, message, outputs, now)
        annotation = {result_annotation(stage): signed_record(key, meta["uid"], stage, result)}
        try:
            await cluster.patch(kinds.WORKFLOW_RUN, run, {"metadata": {"annotations": annotation}},
                                namespace, resource_version=meta.get("resourceVersion"))
        except errors.Conflict:
            continue
        except errors.NotFound:
            raise errors.Forbidden(INVALID_TOKEN) from None
        entry = obj["status"]["stages"][stage]
        return stage_status_for(entry.get("status"), result)
    raise errors.Conflict(f"workflowrun {run} kept changing; try again")


async def report(state: ServerState, namespace: str, run: str, stage: str, token: str,
                 result: DelegationResult) -> dict:
    if not token:
        raise errors.Unauthorized("the delegation token is missing (body token or "
                                  "X-Delegation-Token header)")
    try:
        status = await report_delegation_result(
            state.cluster, namespace, run, stage, token, _succeeded(result), result.message,
            _outputs(result.outputs), key_namespace=state.engine_key_namespace,
        )
    except DelegationRejected as exc:
        raise errors.Conflict(str(exc)) from exc
    return {"workflowrun": run, "stage": stage, "status": status}


def _token(header_token: str | None, authorization: str | None, body: DelegationResult) -> str:
    if body.token:
        return body.token
    if header_token:
        return header_token
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return ""


@router.put("/workflowruns/{run}/stages/{stage}/result",
            summary="Report the result of a delegation stage")
async def report_result(
    run: str,
    stage: str,
    body: DelegationResult,
    x_tenant: str | None = Header(default=None, pattern=DNS_LABEL, max_length=50),
    x_delegation_token: str | None = Header(default=None, max_length=256),
    authorization: str | None = Header(default=None, max_length=1024),
    state: ServerState = Depends(server_state),
) -> dict:
    """Authorised by the stage's delegation token (in the body, `X-Delegation-Token`, or
    `Authorization: Bearer`), not by a user token. The run lives in the tenant of
    `X-Tenant` (default system)."""
    namespace = keys.tenant_namespace(x_tenant or keys.DEFAULT_TENANT)
    return await report(state, namespace, run, stage,
                        _token(x_delegation_token, authorization, body), body)


@router.put("/delegations/{namespace}/{run}/{stage}",
            summary="Report the result of a delegation stage (engine's callback URL)")
@router.post("/delegations/{namespace}/{run}/{stage}", include_in_schema=False)
async def report_result_by_namespace(
    namespace: str,
    run: str,
    stage: str,
    body: DelegationResult,
    token: str | None = Query(default=None, max_length=256),
    x_delegation_token: str | None = Header(default=None, max_length=256),
    authorization: str | None = Header(default=None, max_length=1024),
    state: ServerState = Depends(server_state),
) -> dict:
    return await report(state, namespace, run, stage,
                        token or _token(x_delegation_token, authorization, body), body)
