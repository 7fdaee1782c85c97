"""Delegation stages: hand a stage to an outside system and take its result back.

The engine POSTs ``{"stage", "workflow", "workflowrun", "namespace", "callbackURL",
"token"}`` to the stage's ``spec.delegation.url`` and marks the stage Waiting. The outside
system reports by calling the callback (the server exposes it over REST and calls
`report_delegation_result`), or the stage fails with reason ``Timeout`` at its deadline.

Tokens (`cyclone.engine.core.tokens`) are per run uid *and* stage, signed with the
delegation key derived from the engine key. The engine key is a random value kept in the
Secret ``cyclone-engine-key`` of the engine's system namespace in the control cluster
(``cyclone`` unless configured otherwise: never a tenant's namespace), created with its
namespace on first use. A key older versions kept in ``cyclone-system`` is deleted once the
new one exists, never reused. Nothing secret is stored in the run. Each process reads the
key once: to rotate it, delete the Secret and restart the engine and the servers.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import secrets
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from cyclone.api import keys
from cyclone.engine.controllers.runstate import RunState
from cyclone.engine.controllers.scm_api import tenant_allows_local_addresses
from cyclone.engine.core.results import parse_results
from cyclone.engine.core.status import apply_stage_status, make_status
from cyclone.engine.core.timefmt import parse_rfc3339
from cyclone.engine.core.tokens import (
    Purpose,
    Refusal,
    check_run_token,
    delegation_token,
    purpose_key,
)
from cyclone.engine.notify import DELIVERY_HEADER, delivery_id
from cyclone.engine.outbound import guarded_client, refused_by
from cyclone.kube import kinds
from cyclone.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
)
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

ENGINE_KEY_SECRET = "cyclone-engine-key"
DEFAULT_KEY_NAMESPACE = keys.ENGINE_NAMESPACE
ENGINE_KEY_FIELD = "key"
REASON_DELEGATION_SUCCEED = "DelegationSucceed"
REASON_DELEGATION_FAILURE = "DelegationFailure"
REASON_DELEGATION_WAITING = "DelegationWaiting"
CALLBACK_PATH = "/apis/v1alpha1/delegations/{namespace}/{run}/{stage}"
INVALID_TOKEN = "the delegation token is not valid for this stage"
"""The one answer to a callback whose run, stage or token does not match, whichever it is."""

_engine_keys: weakref.WeakKeyDictionary[Cluster, dict[str, bytes]] = (
    weakref.WeakKeyDictionary())


class DelegationRejected(Exception):
    """A callback the engine refuses: the stage or its run is not waiting anymore."""


async def engine_key(cluster: Cluster, namespace: str) -> bytes:
    """The engine's HMAC key in `namespace`, created (with the namespace) on first use and
    then kept for the life of `cluster`; the legacy key is retired the first time."""
    known = _engine_keys.setdefault(cluster, {})
    if namespace not in known:
        key = await _read_or_create_key(cluster, namespace)
        if namespace != keys.LEGACY_ENGINE_KEY_NAMESPACE:
            await retire_legacy_key(cluster)
        known[namespace] = key
    return known[namespace]


async def prepare_engine_key(cluster: Cluster, namespace: str) -> None:
    """Make sure the engine key exists where it belongs and the legacy one is gone, at the
    start of a process rather than at the first token; a failure is only logged, as the
    first token tries again."""
    try:
        await engine_key(cluster, namespace)
    except ApiError as exc:
        log.warning("cannot prepare the engine key in namespace %s: %s", namespace, exc)


async def token_key(cluster: Cluster, namespace: str, purpose: Purpose) -> bytes:
    """The key of one kind of token, derived from the engine key in `namespace`."""
    return purpose_key(await engine_key(cluster, namespace), purpose)


async def _read_or_create_key(cluster: Cluster, namespace: str) -> bytes:
    try:
        secret = await cluster.get(kinds.SECRET, ENGINE_KEY_SECRET, namespace)
    except NotFound:
        value = base64.b64encode(secrets.token_bytes(32)).decode()
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": ENGINE_KEY_SECRET, "namespace": namespace,
                         "labels": {keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE}},
            "type": "Opaque",
            "data": {ENGINE_KEY_FIELD: value},
        }
        try:
            secret = await _create_in(cluster, manifest, namespace)
        except AlreadyExists:
            secret = await cluster.get(kinds.SECRET, ENGINE_KEY_SECRET, namespace)
    return base64.b64decode(secret["data"][ENGINE_KEY_FIELD])


async def _create_in(cluster: Cluster, manifest: dict, namespace: str) -> dict:
    """Create `manifest`, and its namespace first when that is missing."""
    try:
        return await cluster.create(manifest, namespace=namespace)
    except NotFound:
        with contextlib.suppress(AlreadyExists):
            await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": namespace}})
        return await cluster.create(manifest, namespace=namespace)


async def retire_legacy_key(cluster: Cluster) -> None:
    """Delete the key Secret older versions kept in the `system` tenant's namespace, where
    that tenant could read it: tokens signed with it must stop working."""
    try:
        await cluster.delete(kinds.SECRET, ENGINE_KEY_SECRET, keys.LEGACY_ENGINE_KEY_NAMESPACE)
    except NotFound:
        return
    except Forbidden:
        log.info("may not delete the old engine key %s/%s; the server does",
                 keys.LEGACY_ENGINE_KEY_NAMESPACE, ENGINE_KEY_SECRET)
        return
    except ApiError as exc:
        log.warning("cannot delete the old engine key %s/%s: %s",
                    keys.LEGACY_ENGINE_KEY_NAMESPACE, ENGINE_KEY_SECRET, exc)
        return
    log.info("deleted the old engine key %s/%s", keys.LEGACY_ENGINE_KEY_NAMESPACE,
             ENGINE_KEY_SECRET)


def callback_url(base_url: str, namespace: str, run: str, stage: str) -> str:
    path = CALLBACK_PATH.format(
        namespace=quote(namespace), run=quote(run), stage=quote(stage)
    )
    return base_url.rstrip("/") + path


async def post_delegation(
    url: str, payload: dict, http_timeout: float, *, allow_local: bool = False,
    delivery: str | None = None,
) -> tuple[bool, str]:
    """POST the delegation request; (accepted, message). A URL on a local address is
    refused unless `allow_local` (the tenant's `allowLocalAddresses`). `delivery` is sent
    as the ``X-Cyclone-Delivery`` header."""
    headers = {DELIVERY_HEADER: delivery} if delivery else None
    try:
        async with guarded_client(allow_local=allow_local, timeout=http_timeout) as client:
            response = await client.post(url, json=payload, headers=headers)
    except httpx.HTTPError as exc:
        refused = refused_by(exc)
        if refused is not None:
            return False, f"POST {url}: refused: {refused}"
        return False, f"POST {url}: {exc!r}"
    except ValueError as exc:
        return False, f"POST {url}: {exc}"
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
    `Forbidden` with one message whether the namespace is not a tenant's, the run does not
    exist (or is another run under the same name) or the token is wrong, so that the answer
    reveals nothing; then `NotFound` (the stage has not started) and `DelegationRejected`
    (the stage or the run already ended, or the stage's deadline has passed even if the
    engine has not failed it yet). Returns the updated run.
    """
    key = await token_key(cluster, key_namespace or DEFAULT_KEY_NAMESPACE, Purpose.DELEGATION)
    for _ in range(10):
        obj = None
        if keys.is_tenant_namespace(namespace):
            with contextlib.suppress(NotFound, BadRequest, Invalid):
                obj = await cluster.get(kinds.WORKFLOW_RUN, run, namespace)
        uid = ((obj or {}).get("metadata") or {}).get("uid", "")
        refusal = check_run_token(obj, token or "", delegation_token(key, uid, stage))
        if refusal is Refusal.FINISHED:
            raise DelegationRejected(f"workflowrun {run} has finished")
        if obj is None or refusal is not None:
            raise Forbidden(INVALID_TOKEN)
        stages = (obj.get("status") or {}).get("stages") or {}
        if stage not in stages:
            raise NotFound(f"stage {stage} of workflowrun {run} has not started")
        entry = stages[stage]
        phase = (entry.get("status") or {}).get("phase")
        if phase != "Waiting":
            raise DelegationRejected(f"stage {stage} of {run} is {phase}, not Waiting")
        now = datetime.now(UTC)
        deadline = (entry.get("delegation") or {}).get("deadline")
        if deadline and parse_rfc3339(deadline) <= now:
            raise DelegationRejected(
                f"stage {stage} of {run} timed out at {deadline}, before this report")
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


@dataclass(frozen=True)
class Sent:
    """A delegation request POSTed: whether the outside system took it, and if not why."""

    stage: str
    ok: bool
    message: str


def mark_sent(state: RunState, sent: list[Sent]) -> None:
    """Record requests as sent; a request the outside system refused fails its stage
    (unless the stage has ended meanwhile)."""
    for request in sent:
        delegation = state.stage(request.stage).get("delegation")
        if delegation is not None and delegation.get("sent") is False:
            delegation["sent"] = True
        if not request.ok:
            state.set_stage(request.stage, "Failed", REASON_DELEGATION_FAILURE, request.message)


async def send_pending(
    control: Cluster,
    state: RunState,
    key_namespace: str,
    callback_base_url: str,
    http_timeout: float,
) -> list[Sent]:
    """POST the requests of stages that went Waiting since the last write; what was sent
    is for `mark_sent` to record.

    Called after the Waiting status is written, so a request is never sent for a stage
    the cluster does not show Waiting; a crash right after the POST sends it again, with
    the same ``X-Cyclone-Delivery: <run uid>:<stage>``, by which the outside system
    recognises the repeat.
    """
    pending = [
        name for name, entry in state.stages.items()
        if (entry.get("status") or {}).get("phase") == "Waiting"
        and (entry.get("delegation") or {}).get("sent") is False
    ]
    if not pending:
        return []
    key = await token_key(control, key_namespace, Purpose.DELEGATION)
    workflow = ((state.spec.get("workflowRef") or {}).get("name")) or ""
    allow_local = await tenant_allows_local_addresses(control, state.namespace)
    sent = []
    for name in pending:
        entry = state.stages[name]
        payload = {
            "stage": name,
            "workflow": workflow,
            "workflowrun": state.name,
            "namespace": state.namespace,
            "callbackURL": callback_url(callback_base_url, state.namespace, state.name, name),
            "token": delegation_token(key, state.run["metadata"].get("uid", ""), name),
        }
        ok, message = await post_delegation(
            entry["delegation"]["url"], payload, http_timeout, allow_local=allow_local,
            delivery=delivery_id(state.run["metadata"].get("uid", ""), name))
        sent.append(Sent(name, ok, message))
    return sent


async def take_reported_results(control: Cluster, state: RunState, key_namespace: str) -> None:
    """Turn the results outside systems reported on the run into stage status.

    The server's callback only records the report on the run; this is where the engine
    decides what it does to the stage.
    """
    return None
