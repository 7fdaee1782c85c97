"""Delegation stages: hand a stage to an outside system and take its result back.

The engine POSTs ``{"stage", "workflow", "workflowrun", "namespace", "callbackURL",
"token"}`` to the stage's ``spec.delegation.url`` and marks the stage Waiting. The outside
system reports by calling the callback (the server exposes it over REST and calls
`report_delegation_result`), or the stage fails with reason ``Timeout`` at its deadline.

Tokens: ``HMAC-SHA256(engine key, "{run uid}/{stage}")`` in hex. The engine key is a random
value kept in the Secret ``cyclone-engine-key`` of the engine's system namespace in the
control cluster (``cyclone-system`` unless the engine is configured otherwise), created on
first use. Nothing secret is stored in the run, tokens are
per run *and* stage, and a run recreated under the same name gets different tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from cyclone.api import keys
from cyclone.engine.controllers.runstate import RunState
from cyclone.engine.core.results import parse_results
from cyclone.engine.core.status import apply_stage_status, make_status
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, Conflict, Forbidden, NotFound
from cyclone.kube.protocol import Cluster

ENGINE_KEY_SECRET = "cyclone-engine-key"
DEFAULT_KEY_NAMESPACE = keys.SYSTEM_NAMESPACE
ENGINE_KEY_FIELD = "key"
REASON_DELEGATION_SUCCEED = "DelegationSucceed"
REASON_DELEGATION_FAILURE = "DelegationFailure"
REASON_DELEGATION_WAITING = "DelegationWaiting"
CALLBACK_PATH = "/apis/v1alpha1/delegations/{namespace}/{run}/{stage}"


class DelegationRejected(Exception):
    """A callback the engine refuses: wrong token, or the stage is not waiting anymore."""


async def engine_key(cluster: Cluster, namespace: str) -> bytes:
    """The engine's HMAC key, created in a Secret on first use."""
    try:
        secret = await cluster.get(kinds.SECRET, ENGINE_KEY_SECRET, namespace)
    except NotFound:
        value = base64.b64encode(secrets.token_bytes(32)).decode()
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": ENGINE_KEY_SECRET, "namespace": namespace},
            "type": "Opaque",
            "data": {ENGINE_KEY_FIELD: value},
        }
        try:
            secret = await cluster.create(manifest, namespace=namespace)
        except AlreadyExists:
            secret = await cluster.get(kinds.SECRET, ENGINE_KEY_SECRET, namespace)
    return base64.b64decode(secret["data"][ENGINE_KEY_FIELD])


def delegation_token(key: bytes, run_uid: str, stage: str) -> str:
    return hmac.new(key, f"{run_uid}/{stage}".encode(), hashlib.sha256).hexdigest()


def callback_url(base_url: str, namespace: str, run: str, stage: str) -> str:
    path = CALLBACK_PATH.format(
        namespace=quote(namespace), run=quote(run), stage=quote(stage)
    )
    return base_url.rstrip("/") + path


async def post_delegation(
    url: str, payload: dict, http_timeout: float
) -> tuple[bool, str]:
    """POST the delegation request; (accepted, message)."""
    try:
        async with httpx.AsyncClient(timeout=http_timeout) as client:
            response = await client.post(url, json=payload)
    except httpx.HTTPError as exc:
        return False, f"POST {url}: {exc!r}"
    if response.is_success:
        return True, f"HTTP {response.status_code}"
    return False, f"POST {url}: HTTP {response.status_code} {response.text[:200]}"


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
    """Record what the outside system reported for a Waiting delegation stage.

    ``outputs`` may be ``[{key, value}]``, a mapping, or ``key:value`` lines. Raises
    `NotFound` (no such run or stage), `Forbidden` (bad token) and `DelegationRejected`
    (the stage already ended). Returns the updated run.
    """
    key = await engine_key(cluster, key_namespace or DEFAULT_KEY_NAMESPACE)
    for _ in range(10):
        obj = await cluster.get(kinds.WORKFLOW_RUN, run, namespace)
        expected = delegation_token(key, obj["metadata"].get("uid", ""), stage)
        if not hmac.compare_digest(expected, token or ""):
            raise Forbidden(f"invalid delegation token for stage {stage} of {run}")
        stages = (obj.get("status") or {}).get("stages") or {}
        if stage not in stages:
            raise NotFound(f"stage {stage} of workflowrun {run} has not started")
        entry = stages[stage]
        phase = (entry.get("status") or {}).get("phase")
        if phase != "Waiting":
            raise DelegationRejected(f"stage {stage} of {run} is {phase}, not Waiting")
        now = datetime.now(UTC)
        reason = REASON_DELEGATION_SUCCEED if succeeded else REASON_DELEGATION_FAILURE
        new = make_status("Succeeded" if succeeded else "Failed", now, reason, message)
        entry["status"] = apply_stage_status(entry.get("status"), new, now)
        entry["outputs"] = _outputs(outputs)
        try:
            return await cluster.replace_status(obj)
        except Conflict:
            continue
    raise Conflict(f"workflowrun {run} kept changing; try again")


def _outputs(outputs: list[dict] | dict | str | None) -> list[dict]:
    if not outputs:
        return []
    if isinstance(outputs, str):
        return parse_results(outputs)
    if isinstance(outputs, dict):
        return [{"key": str(k), "value": str(v)} for k, v in outputs.items()]
    return [{"key": str(o["key"]), "value": str(o.get("value", ""))} for o in outputs]


async def send_pending(
    control: Cluster,
    state: RunState,
    key_namespace: str,
    callback_base_url: str,
    http_timeout: float,
) -> bool:
    """POST the requests of stages that went Waiting since the last write; True if any.

    Called after the Waiting status is written, so a request is never sent for a stage
    the cluster does not show Waiting; a crash right after the POST sends it again.
    """
    pending = [
        name for name, entry in state.stages.items()
        if (entry.get("status") or {}).get("phase") == "Waiting"
        and (entry.get("delegation") or {}).get("sent") is False
    ]
    if not pending:
        return False
    key = await engine_key(control, key_namespace)
    workflow = ((state.spec.get("workflowRef") or {}).get("name")) or ""
    for name in pending:
        entry = state.stage(name)
        payload = {
            "stage": name,
            "workflow": workflow,
            "workflowrun": state.name,
            "namespace": state.namespace,
            "callbackURL": callback_url(callback_base_url, state.namespace, state.name, name),
            "token": delegation_token(key, state.run["metadata"].get("uid", ""), name),
        }
        ok, message = await post_delegation(entry["delegation"]["url"], payload, http_timeout)
        entry["delegation"]["sent"] = True
        if not ok:
            state.set_stage(name, "Failed", REASON_DELEGATION_FAILURE, message)
    return True
