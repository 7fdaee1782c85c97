"""Where a run's pods go: execution cluster, workload namespace and tenant PVC."""

from __future__ import annotations

from dataclasses import dataclass

from cyclone.api import keys


@dataclass(frozen=True)
class ExecutionTarget:
    cluster: str
    namespace: str
    pvc: str


def tenant_of(namespace: str) -> str:
    """The tenant whose metadata namespace this is (``cyclone-{tenant}``)."""
    return namespace.removeprefix(keys.TENANT_NAMESPACE_PREFIX)


def execution_target(run: dict) -> ExecutionTarget:
    """The run's ``spec.executionContext``, with the control cluster, the run's own
    namespace and the tenant PVC as defaults."""
    context = (run.get("spec") or {}).get("executionContext") or {}
    namespace = run["metadata"]["namespace"]
    return ExecutionTarget(
        cluster=context.get("cluster") or keys.CONTROL_CLUSTER_NAME,
        namespace=context.get("namespace") or namespace,
        pvc=context.get("pvc") or keys.tenant_pvc_name(tenant_of(namespace)),
    )


def run_key_of_pod(pod: dict) -> tuple[str, str] | None:
    """(namespace, name) of the run a Cyclone pod belongs to, or None."""
    meta = pod.get("metadata") or {}
    run = (meta.get("labels") or {}).get(keys.LABEL_WORKFLOWRUN)
    if not run:
        return None
    namespace = (meta.get("annotations") or {}).get(keys.ANNOTATION_META_NAMESPACE)
    return (namespace or meta.get("namespace") or "", run)
