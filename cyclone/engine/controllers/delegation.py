"""Delegation stages: hand a stage to an outside system and take its result back.

The engine POSTs ``{"stage", "workflow", "workflowrun", "namespace", "callbackURL",
"token"}`` to the stage's ``spec.delegation.url`` and marks the stage Waiting. The outside
system reports by calling the callback; the server records the answer on the run, signed
(`cyclone.engine.core.delegation`), and `take_reported_results` turns it into the stage's
status. Without an answer the stage fails with reason ``Timeout`` at its deadline.

Tokens (`cyclone.engine.core.tokens`) are per run uid *and* stage, signed with the
delegation key derived from the engine key (`cyclone.engine.signing`). Nothing secret is
stored in the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from cyclone.engine.controllers.scm_api import tenant_allows_local_addresses
from cyclone.engine.core.delegation import (
    REASON_DELEGATION_FAILURE,
    annotated_stage,
    taken_result,
)
from cyclone.engine.core.phases import FAILED, WAITING
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.tokens import Purpose, delegation_token
from cyclone.engine.notify import DELIVERY_HEADER, delivery_id
from cyclone.engine.outbound import guarded_client, refused_by
from cyclone.engine.signing import token_key
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

CALLBACK_PATH = "/apis/v1alpha1/delegations/{namespace}/{run}/{stage}"


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
            state.set_stage(request.stage, FAILED, REASON_DELEGATION_FAILURE, request.message)


async def send_pending(
    control: Cluster,
    state: RunState,
    key_namespace: str,
    callback_base_url: str,
    http_timeout: float,
    waiting: Iterable[str] | None = None,
) -> list[Sent]:
    """POST the requests of stages that went Waiting since the last write; what was sent
    is for `mark_sent` to record. ``waiting``: the Waiting stages when known, so only
    those are read.

    Called after the Waiting status is written, so a request is never sent for a stage
    the cluster does not show Waiting; a crash right after the POST sends it again, with
    the same ``X-Cyclone-Delivery: <run uid>:<stage>``, by which the outside system
    recognises the repeat.
    """
    stages = state.stages
    pending = [
        name for name in (stages if waiting is None else waiting)
        if (entry := stages.get(name) or {})
        and (entry.get("status") or {}).get("phase") == WAITING
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
    decides what it does to the stage (`taken_result`). A record that does not verify is
    left where it is and changes nothing.
    """
    annotations = state.run["metadata"].get("annotations") or {}
    reported = {
        stage: text for stage, text in (
            (annotated_stage(annotation), text) for annotation, text in annotations.items())
        if stage is not None and state.stage_phase(stage) == WAITING
    }
    if not reported:
        return
    key = await token_key(control, key_namespace, Purpose.DELEGATION)
    uid = state.run["metadata"].get("uid", "")
    for stage, text in reported.items():
        taken = taken_result(state.stages[stage], text, key, uid, stage)
        if taken is None:
            log.info("run %s/%s: the result recorded for stage %s is not taken (not signed "
                     "for it, or reported after its deadline)", state.namespace, state.name,
                     stage)
            continue
        entry = state.stage(stage)
        entry["status"] = taken.status
        entry["outputs"] = taken.outputs
