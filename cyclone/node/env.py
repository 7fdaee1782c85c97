"""Container environment as Kubernetes builds it, and `$(VAR)` expansion."""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable, Mapping

from cyclone.kube.errors import NotFound

ObjectFetcher = Callable[[str, str], Awaitable[dict]]
"""Fetch a Secret or ConfigMap by (namespace, name); raises NotFound when it is missing."""


class ContainerConfigError(Exception):
    """A container cannot be configured yet (a missing Secret, key or field)."""


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Expand `$(NAME)` from `variables` as Kubernetes does.

    `$$` becomes `$` (so `$$(NAME)` stays literal) and references to unknown names are left
    as written.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return variables.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def expand_all(items: list[str] | None, variables: Mapping[str, str]) -> list[str]:
    return [expand(str(item), variables) for item in items or []]


def field_value(pod: dict, field_path: str) -> str:
    """The value of a downward-API `fieldRef` path of a pod."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    simple = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if field_path in simple:
        return simple[field_path] or ""
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", field_path)
    if match:
        return (metadata.get(match.group(1)) or {}).get(match.group(2), "")
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {field_path!r}")


def secret_values(secret: dict) -> dict[str, str]:
    """A Secret's data decoded to text (`stringData` wins, as the API server merges it)."""
    values = {
        key: base64.b64decode(value).decode("utf-8", "replace")
        for key, value in (secret.get("data") or {}).items()
    }
    values.update(secret.get("stringData") or {})
    return values


def config_map_values(config_map: dict) -> dict[str, str]:
    return dict(config_map.get("data") or {})


async def _source_values(
    kind: str, name: str, namespace: str, optional: bool, fetch: ObjectFetcher
) -> dict[str, str] | None:
    try:
        obj = await fetch(namespace, name)
    except NotFound:
        if optional:
            return None
        raise ContainerConfigError(f'{kind} "{name}" not found') from None
    return secret_values(obj) if kind == "secret" else config_map_values(obj)


async def container_env(
    pod: dict,
    container: dict,
    *,
    fetch_secret: ObjectFetcher,
    fetch_config_map: ObjectFetcher,
) -> dict[str, str]:
    """The environment of a container: `envFrom` first, then `env` in order, expanded."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "secretRef" in source:
            ref, kind, fetch = source["secretRef"], "secret", fetch_secret
        elif "configMapRef" in source:
            ref, kind, fetch = source["configMapRef"], "configmap", fetch_config_map
        else:
            continue
        optional = bool(ref.get("optional"))
        values = await _source_values(kind, ref["name"], namespace, optional, fetch)
        for key, value in (values or {}).items():
            env[prefix + key] = value
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        value = await _value_from(pod, var["valueFrom"], namespace, fetch_secret, fetch_config_map)
        if value is not None:
            env[name] = value
    return env


async def _value_from(
    pod: dict,
    value_from: dict,
    namespace: str,
    fetch_secret: ObjectFetcher,
    fetch_config_map: ObjectFetcher,
) -> str | None:
    if "fieldRef" in value_from:
        return field_value(pod, value_from["fieldRef"]["fieldPath"])
    if "secretKeyRef" in value_from:
        ref, kind, fetch = value_from["secretKeyRef"], "secret", fetch_secret
    elif "configMapKeyRef" in value_from:
        ref, kind, fetch = value_from["configMapKeyRef"], "configmap", fetch_config_map
    else:
        raise ContainerConfigError(f"unsupported valueFrom {sorted(value_from)}")
    optional = bool(ref.get("optional"))
    values = await _source_values(kind, ref["name"], namespace, optional, fetch)
    if values is None:
        return None
    if ref["key"] not in values:
        if optional:
            return None
        raise ContainerConfigError(f'couldn\'t find key {ref["key"]} in {kind} {ref["name"]}')
    return values[ref["key"]]


def run_as(pod: dict, container: dict) -> tuple[int | None, int | None]:
    """The uid and gid a container asks to run as (its `securityContext`, else the pod's).

    A container with `runAsNonRoot` that asks for uid 0 is refused, as the kubelet does.
    """
    own = container.get("securityContext") or {}
    pod_level = (pod.get("spec") or {}).get("securityContext") or {}

    def setting(name: str) -> object:
        return own[name] if own.get(name) is not None else pod_level.get(name)

    ids: list[int | None] = []
    for name in ("runAsUser", "runAsGroup"):
        value = setting(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value < 2**32 - 1):
            raise ContainerConfigError(f"securityContext.{name} {value!r} is not a valid id")
        ids.append(value)  # type: ignore[arg-type]
    if setting("runAsNonRoot") and ids[0] == 0:
        raise ContainerConfigError(
            "container has runAsNonRoot and image will run as root (runAsUser 0)"
        )
    return ids[0], ids[1]
