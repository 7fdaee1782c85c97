"""Objects every Kubernetes API server accepts, for the contract tests."""

from __future__ import annotations

import secrets

UNSCHEDULED = "cyclone-contract-unscheduled"
"""A scheduler that does not exist, so a real control plane never binds test pods."""


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def config_map(name: str | None = None, *, labels: dict | None = None,
               data: dict | None = None, **metadata: object) -> dict:
    meta: dict = {"name": name or unique("cm"), **metadata}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


def pod(name: str | None = None, *, requests: dict | None = None, limits: dict | None = None,
        labels: dict | None = None, grace: int | None = None) -> dict:
    container: dict = {"name": "main", "image": "busybox:1.36", "command": ["true"]}
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    if resources:
        container["resources"] = resources
    spec: dict = {"containers": [container], "restartPolicy": "Never",
                  "automountServiceAccountToken": False,
                  "schedulerName": UNSCHEDULED}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    meta: dict = {"name": name or unique("pod")}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def node(name: str | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name or unique("node")}}


def quota(name: str, hard: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name},
            "spec": {"hard": hard}}
