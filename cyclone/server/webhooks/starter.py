"""From a verified SCM delivery to the runs it starts."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cyclone.api import keys
from cyclone.engine.core.scm import EventType, ScmEvent, delivery_run_name, trigger_matches
from cyclone.engine.core.scm.matching import REVISION_TYPES, with_revision
from cyclone.engine.core.triggerrun import (
    LABEL_PULL_REQUEST,
    run_spec_of,
    trigger_run,
    workflow_name_of,
)
from cyclone.engine.core.weburl import run_link
from cyclone.engine.runstart import record_refusal, start_run
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, Conflict, Forbidden, Invalid, NotFound
from cyclone.kube.protocol import Cluster
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
    web_url_template: str | None = None
    """The runs' link template (`cyclone.engine.core.weburl`); None: the UI's run page."""


@dataclass
class DeliveryOutcome:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"workflowruns": self.created, "existing": self.existing,
                "cancelled": self.cancelled}


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


async def repo_resources(cluster: Cluster, namespace: str, project: str | None,
                         repo: str) -> list[str]:
    """The project's Git and Svn resources whose ``SCM_URL``/``SCM_REPO`` name ``repo``."""
    if not project or not repo:
        return []
    listed = await cluster.list(kinds.RESOURCE, namespace,
                                label_selector=f"{keys.LABEL_PROJECT}={project}")
    names = []
    for resource in listed.items:
        spec = resource.get("spec") or {}
        if spec.get("type") not in REVISION_TYPES:
            continue
        values = {p.get("name"): str(p.get("value") or "")
                  for p in spec.get("parameters") or [] if isinstance(p, dict)}
        where = f"{values.get('SCM_URL', '')}/{values.get('SCM_REPO', '')}".lower()
        if repo.lower() in where:
            names.append(resource["metadata"]["name"])
    return names


def scm_variables(event: ScmEvent) -> dict[str, str]:
    """Global variables describing the event, for stages that want them."""
    values = {"SCM_EVENT": str(event.type), "SCM_REPO": event.repo,
              "SCM_REVISION": event.revision, "SCM_COMMIT": event.commit or "",
              "SCM_TAG": event.tag or "", "SCM_BRANCH": event.branch or ""}
    if event.pull_request is not None:
        values["SCM_PULL_REQUEST"] = str(event.pull_request)
    return {k: v for k, v in values.items() if v}


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
    for index, event in enumerate(delivery.events):
        for trigger in triggers:
            if not trigger_matches(trigger, event):
                continue
            workflow_name = workflow_name_of(trigger)
            try:
                workflow = await cluster.get(kinds.WORKFLOW, workflow_name or "", namespace)
            except NotFound:
                log.warning("trigger %s: workflow %r not found; no run created",
                            trigger["metadata"]["name"], workflow_name)
                continue
            run = await _build_run(cluster, trigger, event, index, delivery)
            try:
                created = await start_run(cluster, run, workflow=workflow)
            except (Invalid, Forbidden) as exc:
                log.warning("trigger %s: no run: %s", trigger["metadata"]["name"], exc)
                await record_refusal(cluster, trigger, run["metadata"]["name"], exc,
                                     datetime.now(UTC))
                continue
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
                     delivery: Delivery) -> dict:
    namespace = trigger["metadata"]["namespace"]
    name = delivery_run_name(trigger["metadata"]["name"], delivery.delivery_id, index)
    spec = run_spec_of(trigger)
    resources = list(spec.get("resources") or [])
    names = [r.get("name") for r in resources if r.get("name")]
    project = (trigger["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT)
    for found in await repo_resources(cluster, namespace, project, event.repo):
        if found not in names:
            resources.append({"name": found, "parameters": []})
            names.append(found)
    spec["resources"] = with_revision(resources,
                                      await resource_types(cluster, namespace, names), event)
    given = {v.get("name") for v in spec.get("globalVariables") or []}
    spec["globalVariables"] = [*(spec.get("globalVariables") or []), *(
        {"name": k, "value": v} for k, v in scm_variables(event).items() if k not in given)]
    spec["workflowRef"] = {"apiVersion": keys.API_VERSION, "kind": "Workflow",
                           "name": workflow_name_of(trigger), "namespace": namespace}
    labels = {}
    if event.pull_request is not None and event.type in (
        EventType.PULL_REQUEST, EventType.PULL_REQUEST_COMMENT
    ):
        labels[LABEL_PULL_REQUEST] = str(event.pull_request)
    run = trigger_run(trigger, name, str(event.type), labels=labels, spec=spec)
    run["metadata"]["annotations"][keys.ANNOTATION_SCM_EVENT] = event.to_annotation(
        integration=delivery.integration, delivery=delivery.delivery_id,
        targetURL=run_link(delivery.web_url_template, delivery.server_url, run),
    )
    return run
