"""Auto-cancel of older unfinished runs of a pull request (``AutoCancelPreviousBuild``).

The server only states the intent: ``spec.stopped`` with the reason and message in the
stop annotations. The engine's stop path ends the run with them
(`cyclone.engine.core.stopping.stop_cause`) at once; its running pods get their own grace
period (`stopping.pod_deletion_grace`), as for any stop that is not forced.
"""

from __future__ import annotations

from cyclone.api import keys
from cyclone.engine.core.phases import is_terminal
from cyclone.engine.core.triggerrun import LABEL_PULL_REQUEST, LABEL_TRIGGER
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.protocol import Cluster

REASON_AUTO_CANCEL = "AutoCancelPreviousBuild"


def _finished(run: dict) -> bool:
    return is_terminal(((run.get("status") or {}).get("overall") or {}).get("phase"))


async def cancel_run(cluster: Cluster, namespace: str, name: str, reason: str,
                     message: str) -> bool:
    """Ask the engine to stop an unfinished run, saying why; False when it had ended
    already or is gone."""
    try:
        run = await cluster.get(kinds.WORKFLOW_RUN, name, namespace)
    except NotFound:
        return False
    if _finished(run):
        return False
    try:
        await cluster.patch(kinds.WORKFLOW_RUN, name, {
            "metadata": {"annotations": {keys.ANNOTATION_STOP_REASON: reason,
                                         keys.ANNOTATION_STOP_MESSAGE: message}},
            "spec": {"stopped": True}}, namespace)
    except NotFound:
        return False
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
        if _finished(run):
            continue
        message = f"superseded by run {newer_name} of pull request {pull_request}"
        if await cancel_run(cluster, namespace, meta["name"], REASON_AUTO_CANCEL, message):
            cancelled.append(meta["name"])
    return cancelled
