"""The write paths of the embedded API server, run inside one SQLite transaction each.

Cascading work that Kubernetes does in controllers (garbage collection of dependents,
namespace finalization, quota usage) happens here synchronously in the same transaction,
so it is never lost when the process dies; clients still see it as ordinary events.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta

from cyclone.api.common import FINISHED_POD_PHASES
from cyclone.kube import kinds
from cyclone.kube.embedded import objects, quota, schema
from cyclone.kube.embedded.store import Transaction
from cyclone.kube.errors import AlreadyExists, BadRequest, Conflict, Forbidden, Invalid, NotFound
from cyclone.kube.kinds import Kind
from cyclone.kube.scheduling import awaits_default_scheduler

_BY_KEY = {f"{k.api_version}/{k.kind}": k for k in kinds.ALL_KINDS}


def not_found(kind: Kind, name: str) -> NotFound:
    return NotFound(f'{kind.plural} "{name}" not found',
                    details={"name": name, "kind": kind.plural})


def _require_active_namespace(tx: Transaction, kind: Kind, namespace: str, name: str) -> None:
    ns = tx.get(kinds.NAMESPACE, None, namespace)
    if ns is None:
        raise NotFound(f'namespaces "{namespace}" not found',
                       details={"name": namespace, "kind": "namespaces"})
    if ns["metadata"].get("deletionTimestamp") or ns.get("status", {}).get("phase") == (
        "Terminating"
    ):
        raise Forbidden(
            f'{kind.plural} "{name}" is forbidden: unable to create new content in namespace '
            f"{namespace} because it is being terminated"
        )


def resolve_namespace(kind: Kind, obj: dict, namespace: str | None) -> str | None:
    if not kind.namespaced:
        obj["metadata"].pop("namespace", None)
        return None
    in_object = obj["metadata"].get("namespace")
    if in_object and namespace and in_object != namespace:
        raise BadRequest(
            "the namespace of the provided object does not match the namespace sent on the "
            "request"
        )
    resolved = in_object or namespace or "default"
    obj["metadata"]["namespace"] = resolved
    return resolved


def create(tx: Transaction, obj: dict, namespace: str | None,
           schedule_to: str | None = None) -> dict:
    """`schedule_to`: the node an unbound pod is assigned to as it is created (a cluster
    whose one node schedules every pod), instead of by a later binding."""
    kind = objects.kind_for(obj)
    obj = objects.prepare_for_create(kind, obj)
    meta = obj["metadata"]
    ns = resolve_namespace(kind, obj, namespace)
    generate = not meta.get("name") and meta.get("generateName")
    if not meta.get("name") and not generate:
        raise Invalid(f"{kind.kind} is invalid: metadata.name: Required value: "
                      "name or generateName is required")
    if not generate:
        objects.validate_name(kind, meta["name"])
    for _ in range(8):
        if generate:
            meta["name"] = objects.generated_name(meta["generateName"])
        if tx.get(kind, ns, meta["name"]) is None:
            break
        if not generate:
            raise AlreadyExists(f'{kind.plural} "{meta["name"]}" already exists',
                                details={"name": meta["name"], "kind": kind.plural})
    else:
        raise AlreadyExists(f'{kind.plural} "{meta["name"]}" already exists')
    objects.validate_name(kind, meta["name"])
    schema.check_custom_resource(kind, obj)
    if ns is not None:
        _require_active_namespace(tx, kind, ns, meta["name"])
    if kind is kinds.POD:
        quota.admit_pod(tx, obj)
        if schedule_to and awaits_default_scheduler(obj):
            _assign(obj, schedule_to)
    stored = tx.put(kind, obj, None)
    if kind is kinds.NAMESPACE:
        _create_default_service_account(tx, meta["name"])
    elif kind is kinds.POD:
        quota.charge(tx, ns or "", stored, 1)
    elif kind is kinds.RESOURCE_QUOTA:
        quota.refresh_quota_status(tx, ns or "", only=copy.deepcopy(stored))
        stored = tx.get(kind, ns, meta["name"]) or stored
    return stored


def _create_default_service_account(tx: Transaction, namespace: str) -> None:
    """What the service-account controller does for every new namespace."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "default", "namespace": namespace}}
    if tx.get(kinds.SERVICE_ACCOUNT, namespace, "default") is None:
        tx.put(kinds.SERVICE_ACCOUNT, objects.prepare_for_create(kinds.SERVICE_ACCOUNT, account),
               None)


def update(
    tx: Transaction,
    kind: Kind,
    namespace: str | None,
    name: str,
    mutate: Callable[[dict], dict] | None,
    *,
    status_only: bool,
    precondition_rv: str | None = None,
    replacement: Callable[[], dict] | None = None,
) -> dict:
    """Read-modify-write one object with the optimistic-concurrency rule of Kubernetes.

    The new object is `mutate(current)` (a patch, which must leave `current` unchanged:
    the patch functions of `cyclone.kube.patching` copy what they change) or
    `replacement()` (a replace)."""
    if status_only and not kind.has_status:
        raise NotFound(f'{kind.plural} "{name}" has no status subresource')
    # A replace reads the stored text, not the kept object: it is the one write whose
    # caller sends a whole object, often an earlier answer of the store edited in place,
    # and that must be compared with what is stored, not with itself.
    read = tx.get if replacement is None else tx.get_private
    current = read(kind, namespace, name)
    if current is None:
        raise not_found(kind, name)
    if replacement is not None:
        incoming = replacement()
    else:
        assert mutate is not None
        incoming = mutate(current)
    incoming_meta = incoming.get("metadata") or {}
    stored_rv = current["metadata"]["resourceVersion"]
    for wanted in (precondition_rv, incoming_meta.get("resourceVersion")):
        if wanted and str(wanted) != stored_rv:
            raise Conflict(
                f'Operation cannot be fulfilled on {kind.plural} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                details={"name": name, "kind": kind.plural},
            )
    if incoming_meta.get("name") not in (None, name):
        raise BadRequest(f"the name of the object ({incoming_meta.get('name')}) does not match "
                         f"the name on the URL ({name})")
    result = objects.merge_for_update(kind, current, incoming, status_only=status_only)
    _forbid_new_finalizers(kind, current, result)
    if result == current:
        return current
    if kind is not kinds.NAMESPACE and _finalized(result):
        return _remove(tx, kind, result, "Background")
    schema.check_custom_resource(kind, result, current)
    stored = tx.put(kind, result, current)
    if kind is kinds.NAMESPACE:
        _finish_namespace_if_empty(tx, name)
    if kind is kinds.POD and quota.counts_against_quota(current) != quota.counts_against_quota(
        stored
    ):
        counted_before = quota.counts_against_quota(current)
        quota.charge(tx, namespace or "", current if counted_before else stored,
                     -1 if counted_before else 1)
    if kind is kinds.RESOURCE_QUOTA and current.get("spec") != stored.get("spec"):
        quota.refresh_quota_status(tx, namespace or "", only=copy.deepcopy(stored))
        stored = tx.get(kind, namespace, name) or stored
    return stored


def _forbid_new_finalizers(kind: Kind, current: dict, result: dict) -> None:
    if not current["metadata"].get("deletionTimestamp"):
        return
    old = set(current["metadata"].get("finalizers") or [])
    added = sorted(set(result["metadata"].get("finalizers") or []) - old)
    if added:
        raise Invalid(
            f'{kind.kind} "{current["metadata"]["name"]}" is invalid: metadata.finalizers: '
            f"Forbidden: no new finalizers can be added if the object is being deleted, "
            f"found new finalizers {added}"
        )


def _finalized(obj: dict) -> bool:
    meta = obj["metadata"]
    return (
        bool(meta.get("deletionTimestamp"))
        and not meta.get("finalizers")
        and not meta.get("deletionGracePeriodSeconds")
    )


def _graceful_pod_period(tx: Transaction, pod: dict, grace: int | None) -> int:
    node_name = (pod.get("spec") or {}).get("nodeName")
    phase = (pod.get("status") or {}).get("phase")
    if not node_name or phase in FINISHED_POD_PHASES:
        return 0
    if grace is not None:
        return max(grace, 0)
    return int((pod.get("spec") or {}).get("terminationGracePeriodSeconds") or 30)


def collect_orphaned_pods(tx: Transaction, now: datetime) -> int:
    """What the controller-manager's pod GC does for pods whose Node is gone: a pod being
    deleted on a node that does not exist (so no kubelet will confirm it) is removed once
    its grace period has passed. Returns how many went."""
    removed = 0
    for pod in tx.terminating(kinds.POD):
        meta = pod["metadata"]
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or meta.get("finalizers") or tx.get(kinds.NODE, None, node_name):
            continue
        since = datetime.fromisoformat(meta["deletionTimestamp"].replace("Z", "+00:00"))
        if now < since + timedelta(seconds=int(meta.get("deletionGracePeriodSeconds") or 0)):
            continue
        _remove(tx, kinds.POD, pod, "Background")
        removed += 1
    return removed


def delete(
    tx: Transaction,
    kind: Kind,
    namespace: str | None,
    name: str,
    *,
    grace_period_seconds: int | None = None,
    propagation_policy: str | None = None,
) -> dict | None:
    current = tx.get(kind, namespace, name)
    if current is None:
        raise not_found(kind, name)
    if kind is kinds.NAMESPACE:
        return _delete_namespace(tx, current)
    meta = current["metadata"]
    grace = _graceful_pod_period(tx, current, grace_period_seconds) if kind is kinds.POD else 0
    if meta.get("deletionTimestamp"):
        if grace == 0 and meta.get("deletionGracePeriodSeconds"):
            updated = copy.deepcopy(current)
            updated["metadata"]["deletionGracePeriodSeconds"] = 0
            if not meta.get("finalizers"):
                _remove(tx, kind, updated, propagation_policy)
                return None
            return tx.put(kind, updated, current)
        return current
    if grace == 0 and not meta.get("finalizers"):
        _remove(tx, kind, current, propagation_policy)
        return None
    updated = copy.deepcopy(current)
    updated["metadata"]["deletionTimestamp"] = objects.now_rfc3339()
    updated["metadata"]["deletionGracePeriodSeconds"] = grace
    return tx.put(kind, updated, current)


def _remove(tx: Transaction, kind: Kind, obj: dict, propagation: str | None) -> dict:
    removed = tx.remove(kind, obj)
    uid = removed["metadata"]["uid"]
    for key, dependent in tx.dependents(uid):
        dep_kind = _BY_KEY.get(key)
        if dep_kind is None:
            continue
        dep_meta = dependent["metadata"]
        if propagation == "Orphan":
            orphaned = copy.deepcopy(dependent)
            orphaned["metadata"]["ownerReferences"] = [
                ref for ref in dep_meta.get("ownerReferences") or [] if ref.get("uid") != uid
            ]
            tx.put(dep_kind, orphaned, dependent)
            continue
        if tx.get(dep_kind, dep_meta.get("namespace"), dep_meta["name"]) is not None:
            delete(tx, dep_kind, dep_meta.get("namespace"), dep_meta["name"])
    namespace = removed["metadata"].get("namespace") if kind.namespaced else None
    if namespace:
        if kind is kinds.POD and quota.counts_against_quota(removed):
            quota.charge(tx, namespace, removed, -1)
        _finish_namespace_if_empty(tx, namespace)
    return removed


def _delete_namespace(tx: Transaction, namespace: dict) -> dict | None:
    name = namespace["metadata"]["name"]
    if not namespace["metadata"].get("deletionTimestamp"):
        updated = copy.deepcopy(namespace)
        updated["metadata"]["deletionTimestamp"] = objects.now_rfc3339()
        updated["metadata"]["deletionGracePeriodSeconds"] = 0
        updated["status"] = {"phase": "Terminating"}
        namespace = tx.put(kinds.NAMESPACE, updated, namespace)
    for key, obj in tx.namespace_contents(name):
        kind = _BY_KEY.get(key)
        if kind is not None and tx.get(kind, name, obj["metadata"]["name"]) is not None:
            delete(tx, kind, name, obj["metadata"]["name"])
    _finish_namespace_if_empty(tx, name)
    return tx.get(kinds.NAMESPACE, None, name)


def _finish_namespace_if_empty(tx: Transaction, name: str) -> None:
    namespace = tx.get(kinds.NAMESPACE, None, name)
    if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
        return
    if not tx.namespace_is_empty(name) or namespace["metadata"].get("finalizers"):
        return
    tx.remove(kinds.NAMESPACE, namespace)


def bind_pod(tx: Transaction, name: str, namespace: str, node_name: str) -> dict:
    current = tx.get(kinds.POD, namespace, name)
    if current is None:
        raise not_found(kinds.POD, name)
    bound_to = (current.get("spec") or {}).get("nodeName")
    if bound_to:
        raise Conflict(f'pod {name} is already assigned to node "{bound_to}"')
    if current["metadata"].get("deletionTimestamp"):
        raise Conflict(f"pod {name} is being deleted, cannot be assigned to a host")
    pod = copy.deepcopy(current)
    _assign(pod, node_name)
    return tx.put(kinds.POD, pod, current)


def _assign(pod: dict, node_name: str) -> None:
    """What a binding does to the pod: its node, and the PodScheduled condition."""
    pod.setdefault("spec", {})["nodeName"] = node_name
    status = pod.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": objects.now_rfc3339()})
    status["conditions"] = conditions
