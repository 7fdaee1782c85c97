"""Which pods Cyclone's own scheduling may place: the node agent's binding of unbound pods
(`NodeAgent(schedule_unbound=True)`) and the embedded cluster's assignment at creation.

Like kube-scheduler, they take only the pods that ask for the default scheduler: a pod
naming another `spec.schedulerName` is left for that scheduler, as a real cluster leaves
it, even when no such scheduler runs (it then stays Pending).
"""

from __future__ import annotations

DEFAULT_SCHEDULER = "default-scheduler"


def awaits_default_scheduler(pod: dict) -> bool:
    """Whether the pod has no node yet, is not being deleted, and asks for the default
    scheduler (an empty `schedulerName` is defaulted to it by the API server)."""
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName")
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER)
