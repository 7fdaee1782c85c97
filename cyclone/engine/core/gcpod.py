"""The GC pod that removes a finished run's data from the tenant PVC."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from cyclone.api import keys
from cyclone.engine.core.names import dns_label_part, gc_pod_name
from cyclone.engine.core.podvolumes import run_data_path

GC_MOUNT_PATH = "/data"
GC_VOLUME = "cyclone-data"
DEFAULT_GC_IMAGE = "busybox:1.36"


def gc_command(run: str) -> list[str]:
    """``sh -c 'rm -rf /data/workflowruns/<run>'`` — plain enough for the host runtime."""
    target = f"{GC_MOUNT_PATH}/{run_data_path(run)}"
    return ["sh", "-c", f"rm -rf {shlex.quote(target)}"]


def build_gc_pod(
    run: str,
    namespace: str,
    pvc: str,
    image: str = DEFAULT_GC_IMAGE,
    *,
    workflow: str | None = None,
    project: str | None = None,
    meta_namespace: str | None = None,
    resources: Mapping[str, Any] | None = None,
    service_account: str | None = None,
) -> dict[str, Any]:
    """A pod named ``wfrgc--<run>`` that deletes ``workflowruns/<run>`` from ``pvc``."""
    labels = {
        keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
        keys.LABEL_POD_KIND: keys.POD_KIND_GC,
        keys.LABEL_WORKFLOWRUN: dns_label_part(run)[:63].strip("-"),
    }
    if workflow:
        labels[keys.LABEL_WORKFLOW] = dns_label_part(workflow)[:63].strip("-")
    if project:
        labels[keys.LABEL_PROJECT] = dns_label_part(project)[:63].strip("-")
    annotations = {keys.ANNOTATION_META_NAMESPACE: meta_namespace} if meta_namespace else {}
    container: dict[str, Any] = {
        "name": "csc-gc",
        "image": image,
        "command": gc_command(run),
        "volumeMounts": [{"name": GC_VOLUME, "mountPath": GC_MOUNT_PATH}],
    }
    if resources:
        container["resources"] = dict(resources)
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": GC_VOLUME, "persistentVolumeClaim": {"claimName": pvc}}],
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    metadata: dict[str, Any] = {"name": gc_pod_name(run), "namespace": namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}



NAMESPACE_TERMINATING = "because it is being terminated"
"""What kube-apiserver (and the embedded cluster) say when refusing new content in a
namespace that is being deleted."""


def gc_pod_refused_for_good(status_code: int, message: str) -> bool:
    """Whether the refusal of a GC pod means no GC pod can ever run there: its namespace
    is gone (404) or terminating (403, "being terminated"). The tenant PVC goes with the
    namespace, so there is nothing left for a GC pod to remove."""
    return status_code == 404 or (status_code == 403 and NAMESPACE_TERMINATING in message)
