"""The one way a WorkflowRun comes into existence: `start_run`.

REST create, retry and rerun (`cyclone/server/runs.py`), SCM deliveries
(`cyclone/server/webhooks/starter.py`) and cron firings
(`cyclone/engine/controllers/triggers.py`) build the run their way (name, labels,
annotations, ``workflowRef``) and hand it here. Every run then gets its execution context
from `placement.execution_context`, the same tenant policy check, the same validation and
the same scope check before it is written, so no entry point can write a run another
would refuse. The decisions are in `cyclone.engine.core.runstart`; this module reads what
they need and raises the typed errors of `cyclone.kube.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cyclone.api import keys
from cyclone.engine.core import runstart as rules
from cyclone.engine.core.masking import Masker, integration_values
from cyclone.engine.core.tenancy import Violation, run_violations, target_of, tenant_of
from cyclone.engine.core.timefmt import rfc3339
from cyclone.engine.placement import execution_context, read_policy
from cyclone.kube import errors, kinds
from cyclone.kube.creation import create_named
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)


def raise_refusal(refusal: rules.Refusal | None) -> None:
    if refusal is None:
        return
    error = (errors.Forbidden if refusal.forbidden
             else errors.Conflict if refusal.conflict else errors.Invalid)
    raise error(refusal.message, details={"causes": refusal.causes})


def validate_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Raise `Invalid` (422) naming every offending field unless `obj` is a valid object."""
    raise_refusal(rules.field_refusal(obj))
    return obj


def refuse_violations(what: str, violations: list[Violation]) -> None:
    """Raise for what crosses the tenant boundary: `Forbidden` (403) when the object reaches
    what another tenant or Cyclone owns, `Invalid` (422) when it only asks for a pod
    feature the tenant is not allowed; the message and ``details.causes`` name the fields."""
    raise_refusal(rules.violations_refusal(what, violations))


async def check_run_tenancy(cluster: Cluster, tenant: str, run: dict,
                            what: str = "workflowrun") -> None:
    """A WorkflowRun of the tenant (or a trigger's inlined run spec): an execution context
    the tenant owns, Secrets of its own namespace, and preset volumes it may mount."""
    context = (run.get("spec") or {}).get("executionContext")
    target = target_of(keys.tenant_namespace(tenant), context)
    policy = await read_policy(cluster, tenant, [target.cluster])
    refuse_violations(f"{what} {run['metadata'].get('name')!r}", run_violations(policy, run))


async def start_run(cluster: Cluster, run: Mapping[str, Any], *,
                    workflow: Mapping[str, Any] | None = None, dry_run: bool = False) -> dict:
    """Complete, check and create ``run`` in its namespace; the created object.

    ``spec.executionContext`` becomes what the run gives, completed with the tenant's
    first opened cluster, else its home. Raises `Invalid` (422) for field errors or a
    scope no stage of the workflow fits, `Forbidden` (403) for what the tenant does not
    own, `NotFound` when the workflow does not exist, and `AlreadyExists` when a run of
    that name does: an entry point with deterministic names (cron, SCM deliveries) takes
    that as the run it already started. ``workflow`` spares the read when the caller
    holds the workflow already. ``dry_run``: every check, then the run as it would be
    created, without creating it.
    """
    namespace = run["metadata"]["namespace"]
    tenant = tenant_of(namespace)
    given = (run.get("spec") or {}).get("executionContext")
    obj = rules.new_run(run, await execution_context(cluster, tenant, given))
    validate_object(obj)
    await check_run_tenancy(cluster, tenant, obj)
    workflow_name = (obj["spec"].get("workflowRef") or {}).get("name") or ""
    if workflow is None:
        workflow = await cluster.get(kinds.WORKFLOW, workflow_name, namespace)
    raise_refusal(rules.scope_refusal(workflow_name, workflow, obj["spec"]))
    stages = await cluster.list(kinds.STAGE, namespace)
    annotations = obj.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[keys.ANNOTATION_STAGE_SPECS] = rules.stage_specs_record(
        workflow, stages.items, await credentials_masker(cluster, namespace))
    return await create_named(cluster, obj, "workflowrun", dry_run=dry_run)


async def credentials_masker(cluster: Cluster, namespace: str) -> Masker:
    """A masker of the credentials of the tenant's integrations (as stage outputs are
    masked), for what a run copies from its stages."""
    listed = await cluster.list(kinds.SECRET, namespace,
                                label_selector=keys.LABEL_INTEGRATION_TYPE)
    return Masker([value for secret in listed.items for value in integration_values(secret)])


async def record_refusal(cluster: Cluster, trigger: dict, run_name: str, error: Exception,
                         now: datetime) -> None:
    """Tell on ``trigger`` (a Warning Event, reason ``RunRefused``) why its run
    ``run_name`` was not created; a second refusal of the same run is already told.

    Best effort: an Event the cluster does not take is logged, and the firing or delivery
    goes on as refused.
    """
    event = rules.refusal_event(trigger, run_name, str(error), rfc3339(now))
    try:
        await cluster.create(event, namespace=event["metadata"]["namespace"])
    except errors.AlreadyExists:
        pass
    except errors.ApiError as exc:
        log.warning("cannot tell trigger %s/%s why run %s was refused: %s",
                    event["metadata"]["namespace"], trigger["metadata"].get("name"),
                    run_name, exc)
