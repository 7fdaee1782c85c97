"""The pod controller of one execution cluster.

Stage status is written by the run controller alone (one writer per run, no conflicts
between controllers): this controller maps every pod event to its run so the run is
reconciled, and deletes Cyclone pods whose run no longer exists (also when a new run of
the same name exists: a pod carries the uid of the run it was made for).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cyclone.api import keys
from cyclone.engine.controllers.caches import ExecutionCluster, ObjectCache
from cyclone.engine.placement import run_key_of_pod
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.informer import split_key
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)


def run_key_for_pod(pod: dict) -> str | None:
    found = run_key_of_pod(pod)
    return f"{found[0]}/{found[1]}" if found else None


class PodController:
    def __init__(
        self,
        execution: ExecutionCluster,
        control: Cluster,
        runs: ObjectCache,
        runs_synced: Callable[[], bool],
    ) -> None:
        self.execution = execution
        self.control = control
        self.runs = runs
        self.runs_synced = runs_synced

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        pod = self.execution.pods.get(namespace, name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return None
        owner = run_key_of_pod(pod)
        if owner is None:
            return None
        if not self.runs_synced():
            return 1.0
        run_namespace, run_name = owner
        pod_run_uid = (pod["metadata"].get("annotations") or {}).get(
            keys.ANNOTATION_WORKFLOWRUN_UID)
        run = self.runs.get(run_namespace, run_name)
        if run is None:
            try:
                run = await self.control.get(kinds.WORKFLOW_RUN, run_name, run_namespace)
            except NotFound:
                run = None
        if run is not None and (not pod_run_uid or pod_run_uid == run["metadata"].get("uid")):
            return None
        log.info("deleting pod %s of vanished run %s/%s", key, run_namespace, run_name)
        try:
            await self.execution.cluster.delete(kinds.POD, name, namespace, grace_period_seconds=0)
        except NotFound:
            pass
        return None
