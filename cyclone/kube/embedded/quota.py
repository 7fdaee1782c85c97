"""ResourceQuota admission of Pods and the quota controller's `status.used`."""

from __future__ import annotations

import copy
from decimal import Decimal

from cyclone.api.common import FINISHED_POD_PHASES
from cyclone.kube import kinds
from cyclone.kube.embedded.store import Transaction
from cyclone.kube.errors import Forbidden
from cyclone.kube.quantity import QuantityError, format_quantity, parse_quantity

_COMPUTE = {
    "cpu": ("requests", "cpu"),
    "requests.cpu": ("requests", "cpu"),
    "memory": ("requests", "memory"),
    "requests.memory": ("requests", "memory"),
    "limits.cpu": ("limits", "cpu"),
    "limits.memory": ("limits", "memory"),
}
_COUNTS = ("pods", "count/pods")
POD_RESOURCES = (*_COMPUTE, *_COUNTS)


def _quantity(value: object) -> Decimal:
    try:
        return parse_quantity(value)  # type: ignore[arg-type]
    except QuantityError:
        return Decimal(0)


def _container_amount(container: dict, part: str, resource: str) -> Decimal | None:
    amounts = (container.get("resources") or {}).get(part) or {}
    return _quantity(amounts[resource]) if resource in amounts else None


def pod_usage(pod: dict) -> dict[str, Decimal]:
    """What a pod counts against a quota: max(sum of containers, largest init container)."""
    spec = pod.get("spec") or {}
    usage: dict[str, Decimal] = {name: Decimal(1) for name in _COUNTS}
    for name, (part, resource) in _COMPUTE.items():
        total = sum(
            (_container_amount(c, part, resource) or Decimal(0))
            for c in spec.get("containers") or []
        )
        init_peak = max(
            [_container_amount(c, part, resource) or Decimal(0)
             for c in spec.get("initContainers") or []],
            default=Decimal(0),
        )
        usage[name] = max(Decimal(total), init_peak)
    return usage


def _missing(pod: dict, constrained: set[str]) -> list[str]:
    spec = pod.get("spec") or {}
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    missing = set()
    for name in constrained & set(_COMPUTE):
        part, resource = _COMPUTE[name]
        if any(_container_amount(c, part, resource) is None for c in containers):
            missing.add(name)
    return sorted(missing)


def counts_against_quota(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") not in FINISHED_POD_PHASES


def namespace_usage(tx: Transaction, namespace: str) -> dict[str, Decimal]:
    used: dict[str, Decimal] = {name: Decimal(0) for name in POD_RESOURCES}
    for pod in tx.list(kinds.POD, namespace):
        if counts_against_quota(pod):
            for name, amount in pod_usage(pod).items():
                used[name] += amount
    return used


def _text(name: str, value: Decimal) -> str:
    binary = name.endswith("memory") and value % 1024 == 0 and value >= 1024
    return format_quantity(value, binary=binary)


def _pretty(values: dict[str, Decimal]) -> str:
    return ",".join(f"{name}={_text(name, values[name])}" for name in sorted(values))


def _hard(quota: dict) -> dict[str, Decimal]:
    return {k: _quantity(v) for k, v in ((quota.get("spec") or {}).get("hard") or {}).items()}


def _recorded_used(quota: dict) -> dict[str, Decimal] | None:
    """The pod usage a quota's status records, or None when it does not record all of it."""
    recorded = (quota.get("status") or {}).get("used") or {}
    tracked = set(_hard(quota)) & set(POD_RESOURCES)
    if not tracked <= set(recorded):
        return None
    return {name: _quantity(recorded[name]) for name in tracked}


def admit_pod(tx: Transaction, pod: dict) -> None:
    """Refuse a pod that a quota of its namespace does not allow, with the k8s message."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    quotas = tx.list(kinds.RESOURCE_QUOTA, namespace)
    if not quotas or not counts_against_quota(pod):
        return
    requested = pod_usage(pod)
    for quota in quotas:
        hard = _hard(quota)
        constrained = set(hard) & set(POD_RESOURCES)
        prefix = f'pods "{name}" is forbidden: '
        if missing := _missing(pod, constrained):
            raise Forbidden(
                f"{prefix}failed quota: {quota['metadata']['name']}: "
                f"must specify {','.join(missing)}"
            )
        used = _recorded_used(quota) or namespace_usage(tx, namespace)
        exceeded = [r for r in constrained if used[r] + requested[r] > hard[r]]
        if exceeded:
            raise Forbidden(
                f"{prefix}exceeded quota: {quota['metadata']['name']}, "
                f"requested: {_pretty({r: requested[r] for r in exceeded})}, "
                f"used: {_pretty({r: used[r] for r in exceeded})}, "
                f"limited: {_pretty({r: hard[r] for r in exceeded})}"
            )


def _write_status(tx: Transaction, quota: dict, used: dict[str, Decimal]) -> None:
    hard = dict((quota.get("spec") or {}).get("hard") or {})
    status = {"hard": hard, "used": {r: _text(r, used[r]) for r in hard if r in used}}
    if quota.get("status") != status and quota["metadata"].get("deletionTimestamp") is None:
        updated = copy.deepcopy(quota)
        updated["status"] = status
        tx.put(kinds.RESOURCE_QUOTA, updated, quota)


def charge(tx: Transaction, namespace: str, pod: dict, sign: int) -> None:
    """Add (sign 1) or release (sign -1) a pod's usage on the namespace's quotas; called
    after the pod write, so a quota without recorded usage is recounted from the store."""
    quotas = tx.list(kinds.RESOURCE_QUOTA, namespace)
    if not quotas:
        return
    usage = pod_usage(pod)
    for quota in quotas:
        used = _recorded_used(quota)
        if used is None:
            refresh_quota_status(tx, namespace, only=quota)
            continue
        _write_status(tx, quota, {r: max(used[r] + sign * usage[r], Decimal(0)) for r in used})


def refresh_quota_status(tx: Transaction, namespace: str, only: dict | None = None) -> None:
    """Recount `status.used` of the namespace's quotas (or of `only`) from its pods."""
    quotas = [only] if only is not None else tx.list(kinds.RESOURCE_QUOTA, namespace)
    if not quotas:
        return
    used = namespace_usage(tx, namespace)
    for quota in quotas:
        _write_status(tx, quota, used)
