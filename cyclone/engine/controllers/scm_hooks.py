"""Repository webhooks registered through the provider API for SCM triggers.

An SCM trigger of an integration (label ``workflowtrigger.cyclone.dev/event-source``, or
``spec.scm.secret`` naming it as in Cyclone v1) gets the tenant's webhook URL registered
on its repository when that GitHub or GitLab integration has a token and does not set
``registerWebhook: false``. The hook's id is kept in
annotation ``workflowtrigger.cyclone.dev/webhook``; finalizer ``cyclone.dev/scm-webhook``
holds a deleted trigger until the hook is removed. The finalizer is added before the hook
is created, so a crash in between never leaks a hook Cyclone does not know of.
"""

from __future__ import annotations

import json
import logging

from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.caches import ObjectCache
from cyclone.engine.controllers.scm_api import (
    ScmAccess,
    create_repo_hook,
    delete_repo_hook,
    read_scm_access,
)
from cyclone.engine.core.scm.matching import integration_of, own_secret, webhook_url
from cyclone.kube import kinds
from cyclone.kube.errors import Conflict, NotFound
from cyclone.kube.informer import object_key, split_key
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

ANNOTATION_WEBHOOK = "workflowtrigger.cyclone.dev/webhook"
FINALIZER = "cyclone.dev/scm-webhook"
RETRY_SECONDS = 60.0
REGISTERING_PROVIDERS = frozenset({"GitHub", "GitLab"})


def hook_record(trigger: dict) -> dict:
    raw = ((trigger.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_WEBHOOK)
    try:
        record = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


def registration_allowed(access: ScmAccess | None) -> bool:
    return bool(access and access.token and access.provider in REGISTERING_PROVIDERS
                and access.register_webhook)


class WebhookRegistrationController:
    def __init__(self, control: Cluster, triggers: ObjectCache, config: EngineConfig) -> None:
        self.control = control
        self.triggers = triggers
        self.config = config

    @staticmethod
    def key_of(trigger: dict) -> str | None:
        if (trigger.get("spec") or {}).get("type") != "SCM":
            return None
        if not integration_of(trigger) and FINALIZER not in (
            (trigger.get("metadata") or {}).get("finalizers") or []
        ):
            return None
        return object_key(trigger)

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        trigger = self.triggers.get(namespace, name)
        if trigger is None:
            return None
        meta = trigger["metadata"]
        integration = integration_of(trigger)
        scm = (trigger.get("spec") or {}).get("scm") or {}
        record = hook_record(trigger)
        if meta.get("deletionTimestamp"):
            return await self._unregister(trigger, integration, scm, record)
        if record.get("id") is not None or not integration:
            return None
        access = await read_scm_access(self.control, namespace or "", integration)
        if access is None or not registration_allowed(access):
            return None
        if FINALIZER not in (meta.get("finalizers") or []):
            await self._patch(trigger, {"metadata": {
                "finalizers": [*(meta.get("finalizers") or []), FINALIZER]}})
            return None
        outcome = await create_repo_hook(
            access, scm.get("repo") or "",
            webhook_url(self.config.callback_base_url, namespace or "", integration),
            own_secret(trigger, integration) or access.webhook_secret,
            self.config.http_timeout_seconds,
        )
        if outcome.ok and (outcome.data or {}).get("id") is not None:
            record = {"id": str(outcome.data["id"]), "repo": scm.get("repo")}
        else:
            record = {"error": outcome.message}
        await self._patch(trigger, {"metadata": {"annotations": {
            ANNOTATION_WEBHOOK: json.dumps(record)}}})
        return None if "id" in record else RETRY_SECONDS

    async def _unregister(self, trigger: dict, integration: str, scm: dict,
                          record: dict) -> float | None:
        finalizers = trigger["metadata"].get("finalizers") or []
        if FINALIZER not in finalizers:
            return None
        if record.get("id") is not None:
            access = await read_scm_access(self.control, trigger["metadata"]["namespace"],
                                           integration)
            if access is not None:
                outcome = await delete_repo_hook(access, record.get("repo") or scm.get("repo")
                                                 or "", record["id"],
                                                 self.config.http_timeout_seconds)
                if not outcome.ok:
                    log.warning("trigger %s: hook %s not removed: %s",
                                object_key(trigger), record["id"], outcome.message)
        remaining = [f for f in finalizers if f != FINALIZER]
        await self._patch(trigger, {"metadata": {"finalizers": remaining}})
        return None

    async def _patch(self, trigger: dict, patch: dict) -> None:
        meta = trigger["metadata"]
        try:
            await self.control.patch(kinds.WORKFLOW_TRIGGER, meta["name"], patch,
                                     meta.get("namespace"),
                                     resource_version=meta.get("resourceVersion"))
        except (NotFound, Conflict):
            pass
