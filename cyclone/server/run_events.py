"""The Kubernetes Events of a WorkflowRun and of its stage pods, read-only.

A tenant reads a run only through its own workflow scope, and its pods' Events only in the
namespaces of the control cluster the tenant's pods may run in (its home and the workload
namespaces it opened): a pod named in a run's status never opens another tenant's Events.
Pods on other execution clusters are not read here; their warnings are in the run's status.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from cyclone.api import keys
from cyclone.engine.placement import execution_target, read_policy
from cyclone.kube import kinds
from cyclone.server.runs import RUNS
from cyclone.server.scopes import Scope, get_owned, workflow_scope

router = APIRouter(tags=["workflowruns"])


async def _events_of(scope: Scope, namespace: str, wanted: set[tuple[str, str]]
                     ) -> list[dict]:
    """Events of the namespace about one of `wanted` (kind, name); filtered here, as the
    embedded cluster serves no field selector on Events."""
    listed = await scope.cluster.list(kinds.EVENT, namespace)
    return [event for event in listed.items
            if ((event.get("involvedObject") or {}).get("kind"),
                (event.get("involvedObject") or {}).get("name")) in wanted]


def _stage_pods(run: dict) -> list[tuple[str, str]]:
    pods = []
    for entry in ((run.get("status") or {}).get("stages") or {}).values():
        pod = (entry or {}).get("pod") or {}
        if pod.get("name") and pod.get("namespace"):
            pods.append((pod["name"], pod["namespace"]))
    return pods


def _when(event: dict) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or event.get("firstTimestamp")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


@router.get(RUNS.path + "/{name}/events", summary="Events of a workflowrun and its pods")
async def list_run_events(name: str, scope: Scope = Depends(workflow_scope)) -> dict:
    """Events whose involved object is the run or one of its stage pods, oldest first."""
    run = await get_owned(scope, kinds.WORKFLOW_RUN, name, "workflowrun")
    uid = (run.get("metadata") or {}).get("uid")
    wanted: dict[str, set[tuple[str, str]]] = {scope.namespace: {("WorkflowRun", name)}}
    if execution_target(run).cluster == keys.CONTROL_CLUSTER_NAME:
        policy = await read_policy(scope.cluster, scope.tenant, [keys.CONTROL_CLUSTER_NAME])
        for pod, namespace in _stage_pods(run):
            if policy.runs_in(keys.CONTROL_CLUSTER_NAME, namespace):
                wanted.setdefault(namespace, set()).add(("Pod", pod))
    found = []
    for namespace, objects in wanted.items():
        for event in await _events_of(scope, namespace, objects):
            involved = event.get("involvedObject") or {}
            if involved.get("kind") == "WorkflowRun" and uid and involved.get("uid") not in (
                    None, uid):
                continue
            found.append(event)
    found.sort(key=lambda event: (_when(event), (event.get("metadata") or {}).get("name", "")))
    return {"apiVersion": "v1", "kind": "EventList", "items": found}
