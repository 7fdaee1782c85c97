"""``POST /tenants/{tenant}/webhook?sourceType=SCM&integration={name}``.

Providers cannot send a bearer token, so the request authenticates by its signature: it
must verify with the integration's ``webhookSecret`` or the ``spec.scm.secret`` of one of
the SCM triggers of that integration (label ``workflowtrigger.cyclone.dev/event-source``).
Only triggers whose own secret verified (or that have none, when the integration's
verified) are matched. Anything unsigned or wrongly signed is 401 and starts nothing.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Query, Request

from cyclone.api import keys
from cyclone.engine.core.scm import (
    PayloadError,
    delivery_id,
    detect_provider,
    parse_events,
    verify,
)
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import server_state
from cyclone.server.integrations import read_integration_secret, spec_of_secret
from cyclone.server.state import ServerState
from cyclone.server.webhooks.starter import Delivery, start_runs

log = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])


async def integration_triggers(cluster: Cluster, namespace: str, integration: str) -> list:
    selector = f"{keys.LABEL_TRIGGER_EVENT_SOURCE}={integration}"
    listed = await cluster.list(kinds.WORKFLOW_TRIGGER, namespace, label_selector=selector)
    return [t for t in listed.items if (t.get("spec") or {}).get("type") == "SCM"]


@router.post("/tenants/{tenant}/webhook", summary="Receive an SCM webhook")
async def receive_webhook(
    tenant: str,
    request: Request,
    source_type: str = Query(alias="sourceType"),
    integration: str = Query(),
    state: ServerState = Depends(server_state),
) -> dict:
    if source_type != "SCM":
        raise errors.BadRequest(f"unsupported sourceType {source_type!r} (only SCM)")
    secret = await read_integration_secret(state.cluster, tenant, integration)
    headers = {name.lower(): value for name, value in request.headers.items()}
    detected = detect_provider(headers)
    if detected is None:
        raise errors.BadRequest("no X-GitHub-Event, X-Gitlab-Event, X-Event-Key or "
                                "X-Subversion-Event header")
    provider, event_name = detected
    body = await request.body()
    namespace = keys.tenant_namespace(tenant)
    shared_secret = (spec_of_secret(secret).get("scm") or {}).get("webhookSecret")
    shared_ok = bool(shared_secret) and verify(provider, headers, body, shared_secret or "")
    triggers = []
    for trigger in await integration_triggers(state.cluster, namespace, integration):
        own = ((trigger.get("spec") or {}).get("scm") or {}).get("secret")
        if (own and verify(provider, headers, body, own)) or (not own and shared_ok):
            triggers.append(trigger)
    if not shared_ok and not triggers:
        raise errors.Unauthorized("the webhook signature is missing or does not verify")
    try:
        events = parse_events(provider, event_name, body)
    except PayloadError as exc:
        raise errors.BadRequest(str(exc)) from exc
    delivery = Delivery(tenant, integration, delivery_id(headers, body), events,
                        state.server_url)
    outcome = await start_runs(state.cluster, triggers, delivery)
    log.info("webhook %s/%s %s %s: %s", tenant, integration, provider, event_name,
             outcome.to_json())
    return {"provider": str(provider), "event": event_name,
            "events": [str(e.type) for e in events], **outcome.to_json()}
