"""Container resource requirements: a container's own, filled from defaults in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_BARE_QUOTA_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})


def quota_requirements(quota: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """ResourceRequirements from a quota map (``requests.cpu``, ``limits.memory``, …).

    As in a ResourceQuota, a bare ``cpu``/``memory``/``ephemeral-storage`` is a request;
    other keys (``pods``, ``count/…``) are not container resources and are ignored.
    """
    result: dict[str, dict[str, str]] = {}
    for key, value in (quota or {}).items():
        if value is None:
            continue
        section, _, name = key.partition(".")
        if section in ("requests", "limits") and name:
            result.setdefault(section, {})[name] = str(value)
        elif key in _BARE_QUOTA_RESOURCES:
            result.setdefault("requests", {})[key] = str(value)
    return result


def container_resources(
    own: Mapping[str, Any] | None, defaults: Sequence[Mapping[str, Any] | None]
) -> dict[str, Any]:
    """``own`` with each missing request/limit taken from the first default that has it.

    A default request is not added when it would exceed the limit the container set for
    the same resource (the pod would be rejected); the limit wins.
    """
    result: dict[str, Any] = {key: value for key, value in (own or {}).items()}
    for section in ("requests", "limits"):
        merged = dict((own or {}).get(section) or {})
        for default in defaults:
            for name, value in ((default or {}).get(section) or {}).items():
                merged.setdefault(name, str(value) if not isinstance(value, str) else value)
        if merged:
            result[section] = merged
    own_limits = ((own or {}).get("limits") or {}).keys()
    own_requests = ((own or {}).get("requests") or {}).keys()
    for name in own_limits:
        if name not in own_requests and "requests" in result and name in result["requests"]:
            result["requests"][name] = result["limits"][name]
    return result
