"""Run history: how many finished runs a workflow keeps, and which runs go beyond that.

A workflow keeps its newest finished runs; older finished runs are deleted (through the
run's finalizer, so their pods and PVC data are cleaned first). Runs that have not ended
are never deleted, and neither is a finished run that an unfinished retry still names in
``spec.retryOf`` (the retry copies its succeeded stages when it is admitted).

The limit is the engine's ``max_workflowruns`` unless the Workflow carries the annotation
``workflow.cyclone.dev/max-workflowruns``; ``0`` keeps every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cyclone.engine.core.phases import is_terminal
from cyclone.engine.core.timefmt import parse_rfc3339

ANNOTATION_MAX_WORKFLOWRUNS = "workflow.cyclone.dev/max-workflowruns"
UNLIMITED = 0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def history_limit(workflow: Mapping[str, Any] | None, default: int) -> int:
    """The number of finished runs the workflow keeps (``0``: all of them).

    The annotation wins when it is a whole number >= 0; any other value is ignored, so
    a typo never deletes runs the engine-wide setting would keep.
    """
    annotations = ((workflow or {}).get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(ANNOTATION_MAX_WORKFLOWRUNS)
    if raw is not None:
        text = str(raw).strip()
        if text.isdigit():
            return int(text)
    return max(default, UNLIMITED)


def _overall_phase(run: Mapping[str, Any]) -> str | None:
    return ((run.get("status") or {}).get("overall") or {}).get("phase")


def _moment(value: Any) -> datetime:
    if not value:
        return _EPOCH
    try:
        return parse_rfc3339(value)
    except (TypeError, ValueError):
        return _EPOCH


def finished_at(run: Mapping[str, Any]) -> datetime:
    """When the run ended: ``status.completionTime``, else the overall phase's last
    transition, else its creation."""
    status = run.get("status") or {}
    meta = run.get("metadata") or {}
    return _moment(
        status.get("completionTime")
        or (status.get("overall") or {}).get("lastTransitionTime")
        or meta.get("creationTimestamp")
    )


def _age_key(run: Mapping[str, Any]) -> tuple[datetime, datetime, str]:
    meta = run.get("metadata") or {}
    return (finished_at(run), _moment(meta.get("creationTimestamp")), meta.get("name") or "")


def runs_to_prune(runs: Iterable[Mapping[str, Any]], keep: int) -> list[Mapping[str, Any]]:
    """The runs of one workflow to delete so that at most `keep` finished runs remain,
    oldest first. `keep` 0 (or less) deletes nothing.

    Runs already being deleted neither count nor are returned; runs that have not ended
    are never returned, and a finished run named by an unfinished run's ``retryOf`` is
    spared (it still counts as kept).
    """
    if keep <= UNLIMITED:
        return []
    live = [r for r in runs if not (r.get("metadata") or {}).get("deletionTimestamp")]
    retried = {
        (r.get("spec") or {}).get("retryOf")
        for r in live if not is_terminal(_overall_phase(r))
    }
    finished = sorted(
        (r for r in live if is_terminal(_overall_phase(r))), key=_age_key, reverse=True
    )
    beyond = finished[keep:]
    return [
        r for r in reversed(beyond)
        if (r.get("metadata") or {}).get("name") not in retried
    ]
