"""Commit statuses back to the SCM for runs started by a commit or pull request event.

A run carrying annotation ``workflowrun.cyclone.dev/scm-event`` (with ``commit``,
``integration`` and ``targetURL``) gets ``pending`` while it is unfinished and ``success``,
``failure`` or ``error`` (Cancelled) when it ends. What was posted, or why posting failed,
is recorded in annotation ``workflowrun.cyclone.dev/commit-status``; the run itself is
never failed by it. The reconcile compares the state due with the state recorded (on the
live object, not only the cache, so a cache that lags behind the last record does not
post twice), and a restart posts only what was not recorded yet.
"""

from __future__ import annotations

import json
import logging

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.caches import ObjectCache
from cyclone.engine.controllers.scm_api import post_commit_status, read_scm_access
from cyclone.engine.core.phases import CANCELLED, FAILED, PENDING, SUCCEEDED
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.informer import object_key, split_key
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

ANNOTATION_COMMIT_STATUS = "workflowrun.cyclone.dev/commit-status"
STATE_BY_PHASE = {SUCCEEDED: "success", FAILED: "failure", CANCELLED: "error"}
SUPPORTED_PROVIDERS = frozenset({"GitHub", "GitLab"})


def scm_event_of(run: dict) -> dict | None:
    raw = ((run.get("metadata") or {}).get("annotations") or {}).get(keys.ANNOTATION_SCM_EVENT)
    if not raw:
        return None
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def due_state(run: dict) -> str:
    """The commit state the run's overall phase calls for."""
    phase = ((run.get("status") or {}).get("overall") or {}).get("phase")
    return STATE_BY_PHASE.get(phase or "", "pending")


def recorded_state(run: dict) -> str | None:
    raw = ((run.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_COMMIT_STATUS)
    try:
        return (json.loads(raw) or {}).get("state") if raw else None
    except ValueError:
        return None


def status_description(run: dict, state: str) -> str:
    phase = ((run.get("status") or {}).get("overall") or {}).get("phase") or PENDING
    return f"Cyclone run {run['metadata']['name']}: {phase}" if state != "pending" else (
        f"Cyclone run {run['metadata']['name']} is running")


class CommitStatusController:
    def __init__(self, control: Cluster, runs: ObjectCache, config: EngineConfig) -> None:
        self.control = control
        self.runs = runs
        self.config = config

    @staticmethod
    def key_of(run: dict) -> str | None:
        event = scm_event_of(run)
        if not event or not event.get("commit") or event.get("provider") not in (
            SUPPORTED_PROVIDERS
        ):
            return None
        return object_key(run)

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        run = self.runs.get(namespace, name)
        if run is None or run["metadata"].get("deletionTimestamp"):
            return None
        event = scm_event_of(run)
        if event is None or self.key_of(run) is None:
            return None
        if recorded_state(run) == due_state(run):
            return None
        try:
            run = await self.control.get(kinds.WORKFLOW_RUN, name, namespace)
        except NotFound:
            return None
        state = due_state(run)
        if recorded_state(run) == state:
            return None
        result = {"state": state}
        access = await read_scm_access(self.control, namespace or "", event.get("integration")
                                       or "")
        if access is None or not access.token:
            result.update(ok=False, message=f"integration {event.get('integration')!r} "
                          "has no SCM token")
        else:
            workflow = (run["metadata"].get("labels") or {}).get(keys.LABEL_WORKFLOW) or (
                (run.get("spec") or {}).get("workflowRef") or {}).get("name") or ""
            outcome = await post_commit_status(
                access, event.get("repo") or "", event["commit"], state,
                context=f"cyclone/{workflow}", target_url=event.get("targetURL") or "",
                description=status_description(run, state),
                http_timeout=self.config.http_timeout_seconds,
            )
            result.update(ok=outcome.ok, message=outcome.message)
        if not result["ok"]:
            log.warning("run %s: commit status %s not posted: %s", key, state, result["message"])
        try:
            await self.control.patch(
                kinds.WORKFLOW_RUN, name,
                {"metadata": {"annotations": {ANNOTATION_COMMIT_STATUS: json.dumps(result)}}},
                namespace,
            )
        except NotFound:
            pass
        return None
