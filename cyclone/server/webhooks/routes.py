"""``POST /tenants/{tenant}/webhook?sourceType=SCM&integration={name}``.

Providers cannot send a bearer token, so a request authenticates by its signature (GitHub
``X-Hub-Signature-256``, Bitbucket Server ``X-Hub-Signature``, GitLab ``X-Gitlab-Token``,
SVN hooks like GitHub). The SCM triggers of the integration are those labelled
``workflowtrigger.cyclone.dev/event-source: <integration>`` or whose ``spec.scm.secret``
names it (Cyclone v1's way). A trigger's ``spec.scm.secret`` that is not the integration's
name is the trigger's own webhook secret; otherwise the integration's ``webhookSecret``
applies. Only triggers whose secret verified are matched; a request no secret verifies is
401 and starts nothing, with the same answer whether or not the tenant and integration
exist. A verified body seen again within the replay window under another delivery id is a
replay (`cyclone.engine.core.deliveries`): 200, ``duplicate: true``, nothing started.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Query, Request

from cyclone.api import keys
from cyclone.engine.core.deliveries import Verdict, delivery_digest
from cyclone.engine.core.scm import (
    PayloadError,
    delivery_id,
    detect_provider,
    parse_events,
    verify,
)
from cyclone.engine.core.scm.matching import integration_of, own_secret
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import server_state
from cyclone.server.integration_records import read_integration_secret, spec_of_secret
from cyclone.server.objects import DNS_LABEL
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import read_tenant
from cyclone.server.webhooks.replays import check_delivery
from cyclone.server.webhooks.starter import Delivery, start_runs

log = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])
NOT_VERIFIED = "the webhook signature is missing or does not verify"
"""The one answer when no secret verifies the request, including when the tenant or the
integration does not exist or is not SCM, so that the route tells nothing about them."""


async def integration_triggers(cluster: Cluster, namespace: str, integration: str) -> list:
    listed = await cluster.list(kinds.WORKFLOW_TRIGGER, namespace)
    return [t for t in listed.items
            if (t.get("spec") or {}).get("type") == "SCM" and integration_of(t) == integration]


async def _scm_integration(cluster: Cluster, tenant: str, integration: str) -> dict | None:
    """The spec of the tenant's SCM integration, None when there is no such thing."""
    try:
        await read_tenant(cluster, tenant)
        spec = spec_of_secret(await read_integration_secret(cluster, tenant, integration))
    except (errors.NotFound, errors.BadRequest, errors.Invalid):
        return None
    return spec if spec.get("type") == "SCM" else None


@router.post("/tenants/{tenant}/webhook", summary="Receive an SCM webhook")
async def receive_webhook(
    tenant: str,
    request: Request,
    source_type: str = Query("SCM", alias="sourceType"),
    integration: str = Query(..., max_length=63, pattern=DNS_LABEL),
    state: ServerState = Depends(server_state),
) -> dict:
    """Start one run per matching enabled SCM trigger of ``integration``; answers the runs
    started (``workflowruns``), found from an earlier delivery, and cancelled. A signed
    body received again under another delivery id within the replay window answers
    ``duplicate: true`` and starts nothing."""
    if source_type != "SCM":
        raise errors.BadRequest(f"unsupported sourceType {source_type!r} (only SCM)")
    body = await request.body()  # bounded by --max-webhook-bytes (server/limits.py)
    headers = {name.lower(): value for name, value in request.headers.items()}
    detected = detect_provider(headers)
    if detected is None:
        raise errors.BadRequest("no X-GitHub-Event, X-Gitlab-Event, X-Event-Key or "
                                "X-Subversion-Event header")
    provider, event_name = detected
    spec = await _scm_integration(state.cluster, tenant, integration)
    if spec is None:
        raise errors.Unauthorized(NOT_VERIFIED)
    namespace = keys.tenant_namespace(tenant)
    shared = str((spec.get("scm") or {}).get("webhookSecret") or "")
    shared_ok = bool(shared) and verify(provider, headers, body, shared)
    triggers = []
    for trigger in await integration_triggers(state.cluster, namespace, integration):
        own = own_secret(trigger, integration)
        if (own and verify(provider, headers, body, own)) or (not own and shared_ok):
            triggers.append(trigger)
    if not shared_ok and not triggers:
        raise errors.Unauthorized(NOT_VERIFIED)
    try:
        events = parse_events(provider, event_name, body)
    except PayloadError as exc:
        raise errors.BadRequest(str(exc)) from exc
    answer = {"provider": str(provider), "event": event_name,
              "events": [str(e.type) for e in events]}
    delivery = Delivery(tenant, integration, delivery_id(headers, body), events,
                        state.server_url, state.settings.web_url_template)
    if triggers:
        verdict = await check_delivery(
            state.cluster, tenant,
            delivery_digest(str(provider), event_name, integration, body),
            delivery.delivery_id, state.webhook_replay_window)
        if verdict is Verdict.REPLAY:
            log.warning("webhook %s/%s %s %s: a replay of a delivery seen within %s; "
                        "nothing started", tenant, integration, provider, event_name,
                        state.webhook_replay_window)
            return {**answer, "duplicate": True, "workflowruns": [], "existing": [],
                    "cancelled": []}
    outcome = await start_runs(state.cluster, triggers, delivery)
    log.info("webhook %s/%s %s %s: %s", tenant, integration, provider, event_name,
             outcome.to_json())
    return {**answer, "duplicate": False, **outcome.to_json()}
