"""Checks every stage pod must pass: the Kubernetes schema and what it does not check."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [*(spec.get("initContainers") or []), *spec["containers"]]


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in all_containers(pod) if c["name"] == name)


def env_of(item: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in item.get("env") or []}


def mounts_of(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in item.get("volumeMounts") or []}


def assert_valid_pod(pod: dict[str, Any]) -> None:
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    assert len(pod["metadata"]["name"]) <= 63
    assert DNS_LABEL.match(pod["metadata"]["name"])
    names = [c["name"] for c in all_containers(pod)]
    assert len(names) == len(set(names)), names
    for name in names:
        assert DNS_LABEL.match(name) and len(name) <= 63, name
    volumes = [v["name"] for v in pod["spec"].get("volumes") or []]
    assert len(volumes) == len(set(volumes)), volumes
    for item in all_containers(pod):
        paths = [m["mountPath"] for m in item.get("volumeMounts") or []]
        assert len(paths) == len(set(paths)), (item["name"], paths)
        for mount in item.get("volumeMounts") or []:
            assert mount["name"] in volumes, (item["name"], mount)
