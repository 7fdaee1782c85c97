"""From a verified SCM delivery to the runs it starts."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

from cyclone.api import keys
from cyclone.engine.core.scm import EventType, ScmEvent, delivery_run_name, trigger_matches
from cyclone.engine.core.scm.matching import with_revision
from cyclone.engine.core.triggerrun import (
    LABEL_PULL_REQUEST,
    run_spec_of,
    trigger_run,
    workflow_name_of,
)
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, Conflict, NotFound
from cyclone.kube.protocol import Cluster
from cyclone.server.clusters import execution_context
from cyclone.server.webhooks.cancel import cancel_previous_pull_request_runs

log = logging.getLogger(__name__)

STATUS_ATTEMPTS = 5


@dataclass
class Delivery:
    """One verified webhook request."""

    tenant: str
    integration: str
    delivery_id: str
    events: list[ScmEvent]
    server_url: str


@dataclass
class DeliveryOutcome:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"created": self.created, "existing": self.existing,
                "cancelled": self.cancelled}


def run_url(server_url: str, run: dict) -> str:
    labels = run["metadata"].get("labels") or {}
    project = labels.get(keys.LABEL_PROJECT, "")
    workflow = labels.get(keys.LABEL_WORKFLOW, "")
    return (f"{server_url.rstrip('/')}/apis/v1alpha1/projects/{project}/workflows/"
            f"{workflow}/workflowruns/{run['metadata']['name']}")


async def resource_types(cluster: Cluster, namespace: str, names: list[str]) -> dict:
    types: dict[str, str | None] = {}
    for name in names:
        try:
            resource = await cluster.get(kinds.RESOURCE, name, namespace)
        except NotFound:
            types[name] = None
            continue
        types[name] = (resource.get("spec") or {}).get("type")
    return types


async def count_firing(cluster: Cluster, trigger: dict) -> None:
    """``status.count`` + 1, with optimistic concurrency against other deliveries."""
    meta = trigger["metadata"]
    for _ in range(STATUS_ATTEMPTS):
        try:
            current = await cluster.get(kinds.WORKFLOW_TRIGGER, meta["name"], meta["namespace"])
        except NotFound:
            return
        updated = copy.deepcopy(current)
        status = updated.get("status") or {}
        status["count"] = int(status.get("count") or 0) + 1
        updated["status"] = status
        try:
            await cluster.replace_status(updated)
            return
        except Conflict:
            continue
        except NotFound:
            return


async def start_runs(cluster: Cluster, triggers: list[dict], delivery: Delivery) -> DeliveryOutcome:
    """Create one run per (event, matching trigger); a redelivery finds them existing."""
    namespace = keys.tenant_namespace(delivery.tenant)
    outcome = DeliveryOutcome()
    context: dict | None = None
    for index, event in enumerate(delivery.events):
        for trigger in triggers:
            if not trigger_matches(trigger, event):
                continue
            workflow = workflow_name_of(trigger)
            try:
                await cluster.get(kinds.WORKFLOW, workflow or "", namespace)
            except NotFound:
                log.warning("trigger %s: workflow %r not found; no run created",
                            trigger["metadata"]["name"], workflow)
                continue
            if context is None:
                context = await execution_context(cluster, delivery.tenant)
            run = await _build_run(cluster, trigger, event, index, delivery, context)
            try:
                created = await cluster.create(run, namespace=namespace)
            except AlreadyExists:
                outcome.existing.append(run["metadata"]["name"])
                continue
            outcome.created.append(created["metadata"]["name"])
            await count_firing(cluster, trigger)
            if event.type == EventType.PULL_REQUEST and event.pull_request is not None:
                outcome.cancelled += await cancel_previous_pull_request_runs(
                    cluster, namespace, trigger["metadata"]["name"], event.pull_request,
                    created)
    return outcome


async def _build_run(cluster: Cluster, trigger: dict, event: ScmEvent, index: int,
                     delivery: Delivery, context: dict) -> dict:
    namespace = trigger["metadata"]["namespace"]
    name = delivery_run_name(trigger["metadata"]["name"], delivery.delivery_id, index)
    spec = run_spec_of(trigger)
    names = [r.get("name") for r in spec.get("resources") or [] if r.get("name")]
    spec["resources"] = with_revision(spec.get("resources") or [],
                                      await resource_types(cluster, namespace, names), event)
    spec["workflowRef"] = {"apiVersion": keys.API_VERSION, "kind": "Workflow",
                           "name": workflow_name_of(trigger), "namespace": namespace}
    current = {k: v for k, v in (spec.get("executionContext") or {}).items() if v}
    if not current.get("cluster") or not current.get("namespace"):
        current = {**context, **current}
    spec["executionContext"] = current
    labels = {}
    if event.pull_request is not None and event.type in (
        EventType.PULL_REQUEST, EventType.PULL_REQUEST_COMMENT
    ):
        labels[LABEL_PULL_REQUEST] = str(event.pull_request)
    run = trigger_run(trigger, name, str(event.type), labels=labels, spec=spec)
    run["metadata"]["annotations"][keys.ANNOTATION_SCM_EVENT] = event.to_annotation(
        integration=delivery.integration, delivery=delivery.delivery_id,
        targetURL=run_url(delivery.server_url, run),
    )
    return run
