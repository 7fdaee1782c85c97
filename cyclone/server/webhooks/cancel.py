"""Auto-cancel of older unfinished runs of a pull request (``AutoCancelPreviousBuild``)."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime

from cyclone.engine.core.phases import CANCELLED, PENDING, is_terminal
from cyclone.engine.core.status import apply_stage_status, make_status
from cyclone.engine.core.triggerrun import LABEL_PULL_REQUEST, LABEL_TRIGGER
from cyclone.kube import kinds
from cyclone.kube.errors import Conflict, NotFound
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

REASON_AUTO_CANCEL = "AutoCancelPreviousBuild"
ANNOTATION_STOP_REASON = "workflowrun.cyclone.dev/stop-reason"
WRITE_ATTEMPTS = 5


def cancelled_status(status: dict | None, now: datetime, reason: str, message: str) -> dict:
    """The run status with every unfinished stage and the overall status Cancelled."""
    result = copy.deepcopy(status or {})
    cancelled = make_status(CANCELLED, now, reason, message)
    for entry in (result.get("stages") or {}).values():
        old = entry.get("status")
        if not is_terminal((old or {}).get("phase")):
            entry["status"] = apply_stage_status(old, cancelled, now)
    overall = apply_stage_status(result.get("overall"), cancelled, now)
    if (result.get("overall") or {}).get("phase") in (None, PENDING):
        overall.pop("startTime", None)
    result["overall"] = overall
    result["completionTime"] = overall["lastTransitionTime"]
    result.pop("queued", None)
    return result


async def cancel_run(cluster: Cluster, namespace: str, name: str, reason: str,
                     message: str) -> bool:
    """Cancel an unfinished run: its status first, then ``spec.stopped`` so the engine
    treats it as stopped. False when it had ended already or is gone."""
    for _ in range(WRITE_ATTEMPTS):
        try:
            run = await cluster.get(kinds.WORKFLOW_RUN, name, namespace)
        except NotFound:
            return False
        if is_terminal(((run.get("status") or {}).get("overall") or {}).get("phase")):
            return False
        run["status"] = cancelled_status(run.get("status"), datetime.now(UTC), reason, message)
        try:
            await cluster.replace_status(run)
        except Conflict:
            continue
        except NotFound:
            return False
        break
    else:
        log.warning("run %s/%s: could not be cancelled (kept changing)", namespace, name)
        return False
    try:
        await cluster.patch(kinds.WORKFLOW_RUN, name, {
            "metadata": {"annotations": {ANNOTATION_STOP_REASON: reason}},
            "spec": {"stopped": True}}, namespace)
    except NotFound:
        pass
    return True


async def cancel_previous_pull_request_runs(
    cluster: Cluster, namespace: str, trigger: str, pull_request: int, newer: dict
) -> list[str]:
    """Cancel the trigger's unfinished runs of the same pull request created before
    ``newer``; returns their names."""
    selector = f"{LABEL_TRIGGER}={trigger},{LABEL_PULL_REQUEST}={pull_request}"
    listed = await cluster.list(kinds.WORKFLOW_RUN, namespace, label_selector=selector)
    newer_name = newer["metadata"]["name"]
    newer_time = newer["metadata"].get("creationTimestamp") or ""
    cancelled = []
    for run in listed.items:
        meta = run["metadata"]
        if meta["name"] == newer_name or (meta.get("creationTimestamp") or "") > newer_time:
            continue
        if is_terminal(((run.get("status") or {}).get("overall") or {}).get("phase")):
            continue
        message = f"superseded by run {newer_name} of pull request {pull_request}"
        if await cancel_run(cluster, namespace, meta["name"], REASON_AUTO_CANCEL, message):
            cancelled.append(meta["name"])
    return cancelled
