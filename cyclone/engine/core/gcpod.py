"""What collecting a finished run removes: its data on the tenant PVC (the GC pod), and the
per-pod Secrets of credentials bound to its stages."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from cyclone.api import keys
from cyclone.engine.core.images import OWN_IMAGE_PULL_POLICY, TOOLBOX_IMAGE
from cyclone.engine.core.names import dns_label_part, gc_pod_name
from cyclone.engine.core.phases import is_terminal
from cyclone.engine.core.podvolumes import run_data_path

GC_MOUNT_PATH = "/data"
GC_VOLUME = "cyclone-data"
DEFAULT_GC_IMAGE = TOOLBOX_IMAGE


def run_label(run: str) -> str:
    """The value of a run's ``workflowrun.cyclone.dev/name`` label on what it creates."""
    return dns_label_part(run)[:63].strip("-")


BOUND_SECRET_SUFFIX = "-bound"
"""Of `bindings.credentials_secret_name`."""


def bound_secrets_selector(run: str) -> str:
    """The label selector of the Secrets of credentials bound to ``run``'s stage pods."""
    return (f"{keys.LABEL_POD_CREATED_BY}={keys.CREATED_BY_CYCLONE},"
            f"{keys.LABEL_WORKFLOWRUN}={run_label(run)}")


def bound_secrets_of(secrets: Iterable[Mapping[str, Any]], meta_namespace: str) -> list[str]:
    """The names of the bound-credentials Secrets among ``secrets`` (listed with
    `bound_secrets_selector`) that belong to the run of ``meta_namespace``; one without the
    meta-namespace annotation belongs to the run its labels name, as its stage pods do."""
    return sorted(
        meta["name"] for meta in (secret.get("metadata") or {} for secret in secrets)
        if str(meta.get("name", "")).endswith(BOUND_SECRET_SUFFIX)
        and (meta.get("annotations") or {}).get(keys.ANNOTATION_META_NAMESPACE,
                                                 meta_namespace) == meta_namespace)


def gc_command(run: str) -> list[str]:
    """``sh -c 'rm -rf /data/workflowruns/<run>'`` — plain enough for the host runtime."""
    target = f"{GC_MOUNT_PATH}/{run_data_path(run)}"
    return ["sh", "-c", f"rm -rf {shlex.quote(target)}"]


def pvc_maintenance_pod(name: str, namespace: str, pvc: str, container: str,
                        command: list[str], labels: Mapping[str, str], *,
                        image: str = DEFAULT_GC_IMAGE,
                        resources: Mapping[str, Any] | None = None,
                        service_account: str | None = None,
                        annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A pod that runs `command` once on the tenant PVC `pvc`, mounted at ``/data``: the run
    GC pod and the cache cleaning pod (`acceleration.build_clean_cache_pod`). Both take
    the engine's ``gc_image`` and ``gc_resources``, so a mirror of images and a quota that
    demands requests and limits serve both alike."""
    spec_container: dict[str, Any] = {
        "name": container,
        "image": image,
        "imagePullPolicy": OWN_IMAGE_PULL_POLICY,
        "command": command,
        "volumeMounts": [{"name": GC_VOLUME, "mountPath": GC_MOUNT_PATH}],
    }
    if resources:
        spec_container["resources"] = dict(resources)
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [spec_container],
        "volumes": [{"name": GC_VOLUME, "persistentVolumeClaim": {"claimName": pvc}}],
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


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
        keys.LABEL_WORKFLOWRUN: run_label(run),
    }
    if workflow:
        labels[keys.LABEL_WORKFLOW] = dns_label_part(workflow)[:63].strip("-")
    if project:
        labels[keys.LABEL_PROJECT] = dns_label_part(project)[:63].strip("-")
    return pvc_maintenance_pod(
        gc_pod_name(run), namespace, pvc, "csc-gc", gc_command(run), labels, image=image,
        resources=resources, service_account=service_account,
        annotations={keys.ANNOTATION_META_NAMESPACE: meta_namespace} if meta_namespace else None)


NAMESPACE_TERMINATING = "because it is being terminated"
"""What kube-apiserver (and the embedded cluster) say when refusing new content in a
namespace that is being deleted."""


def gc_pod_refused_for_good(status_code: int, message: str) -> bool:
    """Whether the refusal of a GC pod means no GC pod can ever run there: its namespace
    is gone (404) or terminating (403, "being terminated"). The tenant PVC goes with the
    namespace, so there is nothing left for a GC pod to remove."""
    return status_code == 404 or (status_code == 403 and NAMESPACE_TERMINATING in message)


ANNOTATION_COLLECT_NOW = "workflowrun.cyclone.dev/collect-now"
"""On a finished run: collect its data now, without waiting for the GC delay (set by
`POST /storage/cleanup`)."""


def gc_due(ended: datetime, delay_seconds: float, annotations: Mapping[str, str]
           ) -> datetime:
    """When a finished run's data is collected: `delay_seconds` after it ended, or at once
    when it is marked `ANNOTATION_COLLECT_NOW`."""
    if annotations.get(ANNOTATION_COLLECT_NOW) == "true":
        return ended
    return ended + timedelta(seconds=delay_seconds)


def cleanup_candidates(runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The runs whose data a cleanup starts collecting: finished, not yet cleaned, not
    already marked, not being deleted (their finalizer collects them)."""
    names = []
    for run in runs:
        meta = run.get("metadata") or {}
        status = run.get("status") or {}
        phase = (status.get("overall") or {}).get("phase")
        if (is_terminal(phase) and not status.get("cleaned")
                and not meta.get("deletionTimestamp")
                and (meta.get("annotations") or {}).get(ANNOTATION_COLLECT_NOW) != "true"):
            names.append(meta.get("name"))
    return sorted(n for n in names if n)
