"""Kubernetes Events the engine and server write about Cyclone's own objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def warning_event(obj: Mapping[str, Any], name: str, reason: str, message: str,
                  now: str) -> dict[str, Any]:
    """A Warning Event named ``name`` on ``obj`` (in its namespace): a repeated write of the
    same name finds it already there, so one cause is told once."""
    meta = obj.get("metadata") or {}
    involved = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                "name": meta.get("name"), "namespace": meta.get("namespace")}
    if meta.get("uid"):
        involved["uid"] = meta["uid"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta.get("namespace")},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": "Warning",
        "source": {"component": "cyclone"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
