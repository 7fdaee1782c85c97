"""What the API server does to an object's metadata and defaults on create and update."""

from __future__ import annotations

import base64
import copy
import re
import secrets
import string
import uuid
from datetime import UTC, datetime

from cyclone.kube import kinds
from cyclone.kube.errors import BadRequest, Invalid
from cyclone.kube.kinds import Kind
from cyclone.kube.scheduling import DEFAULT_SCHEDULER

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
SYSTEM_METADATA = (
    "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
    "generation", "namespace", "name", "selfLink",
)
_NON_SPEC = ("apiVersion", "kind", "metadata", "status")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kind_for(obj: dict) -> Kind:
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
        raise BadRequest("an object must be a JSON object with metadata")
    try:
        return kinds.kind_of(obj)
    except KeyError as exc:
        raise Invalid(
            f"no kind {obj.get('kind')!r} is registered for version {obj.get('apiVersion')!r}"
        ) from exc


def generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def validate_name(kind: Kind, name: str) -> None:
    pattern, limit = (_LABEL, 63) if kind is kinds.NAMESPACE else (_SUBDOMAIN, 253)
    if len(name) > limit or not pattern.match(name):
        raise Invalid(
            f'{kind.kind} "{name}" is invalid: metadata.name: Invalid value: "{name}": '
            "a lowercase RFC 1123 name must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character"
        )


def prepare_for_create(kind: Kind, obj: dict) -> dict:
    """System metadata and the defaults the API server fills in; status as the kind resets it."""
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    if meta.get("resourceVersion"):
        raise BadRequest("resourceVersion should not be set on objects to be created")
    for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
        meta.pop(key, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    meta["generation"] = 1
    fold_string_data(obj)
    if kind is kinds.POD:
        _default_pod(obj)
    elif kind is kinds.NAMESPACE:
        obj["spec"] = {"finalizers": ["kubernetes"], **(obj.get("spec") or {})}
        obj["status"] = {"phase": "Active"}
    elif kind is kinds.PERSISTENT_VOLUME_CLAIM:
        obj["status"] = {"phase": "Pending"}
    elif kind.has_status and kind is not kinds.NODE:
        obj.pop("status", None)
    return obj


def _default_container(container: dict) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = container.get("image", "")
    tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
    latest = tagless or image.endswith(":latest")
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    resources = container.setdefault("resources", {})
    limits = resources.get("limits") or {}
    if limits:
        resources["requests"] = {**limits, **(resources.get("requests") or {})}


def _qos_class(containers: list[dict]) -> str:
    requests_or_limits = [
        c.get("resources", {}).get(part) or {} for c in containers for part in ("requests",
                                                                                "limits")
    ]
    if not any(requests_or_limits):
        return "BestEffort"
    for c in containers:
        res = c.get("resources", {})
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        for name in ("cpu", "memory"):
            if name not in limits or str(requests.get(name)) != str(limits[name]):
                return "Burstable"
    return "Guaranteed"


def _default_pod(pod: dict) -> None:
    spec = pod.setdefault("spec", {})
    containers = spec.get("containers") or []
    name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "")
    if not containers:
        raise Invalid(f'Pod "{name}" is invalid: spec.containers: Required value')
    for container in [*containers, *(spec.get("initContainers") or [])]:
        if not container.get("name") or not container.get("image"):
            raise Invalid(
                f'Pod "{name}" is invalid: spec.containers: name and image are required'
            )
        _default_container(container)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", DEFAULT_SCHEDULER)
    spec.setdefault("securityContext", {})
    all_containers = [*containers, *(spec.get("initContainers") or [])]
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(all_containers)}


def fold_string_data(obj: dict) -> dict:
    """Secrets: `stringData` is written into `data` (base64) and never stored."""
    if obj.get("kind") == "Secret" and "stringData" in obj:
        data = dict(obj.get("data") or {})
        for key, value in (obj.pop("stringData") or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
    return obj


def spec_changed(old: dict, new: dict) -> bool:
    keys = (set(old) | set(new)) - set(_NON_SPEC)
    return any(old.get(key) != new.get(key) for key in keys)


def merge_for_update(kind: Kind, current: dict, incoming: dict, *, status_only: bool) -> dict:
    """The object an update stores: system metadata kept, status or the rest as the
    subresource allows, generation bumped on a spec change.

    A status update of a custom resource keeps nothing but the new status; one of a core
    kind also keeps metadata changes (as the core status strategies of Kubernetes do).
    """
    if status_only and kind.group:
        # Both objects belong to the update alone and neither is changed below the top
        # level after this, so the result shares their parts instead of deep copies.
        result = {k: v for k, v in current.items() if k != "status"}
        result["metadata"] = dict(current["metadata"])
        if "status" in incoming:
            result["status"] = incoming["status"]
        return result
    result = fold_string_data(copy.deepcopy(incoming))
    result["apiVersion"], result["kind"] = current["apiVersion"], current["kind"]
    meta = result.setdefault("metadata", {})
    for key in SYSTEM_METADATA:
        if key in current["metadata"]:
            meta[key] = current["metadata"][key]
        else:
            meta.pop(key, None)
    meta.pop("generateName", None)
    if "generateName" in current["metadata"]:
        meta["generateName"] = current["metadata"]["generateName"]
    if status_only:
        for key in (set(current) | set(result)) - set(_NON_SPEC):
            if key in current:
                result[key] = copy.deepcopy(current[key])
            else:
                result.pop(key, None)
        return result
    if kind.has_status:
        if "status" in current:
            result["status"] = copy.deepcopy(current["status"])
        else:
            result.pop("status", None)
    if spec_changed(current, result):
        meta["generation"] = int(current["metadata"].get("generation") or 1) + 1
    return result
