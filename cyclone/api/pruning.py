"""What a kube-apiserver would drop from an object stored under a structural schema.

A custom resource is pruned before it is stored: a field its CRD's ``openAPIV3Schema`` does
not name is removed without an error, unless the object around it keeps unknown fields
(``x-kubernetes-preserve-unknown-fields``) or types every entry (``additionalProperties``).
A null in a field the schema does not mark ``nullable`` is removed as well. The embedded
cluster stores objects whole, so a field missing from a model reaches the engine there and
vanishes on a real cluster; ``pruned_fields`` names such fields without a cluster.

This mirrors ``k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning`` and the null
pruning of its defaulting step. At the root, ``apiVersion`` and ``kind`` are kept and
``metadata`` is kept to the fields of ObjectMeta, as the apiserver decodes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "clusterName", "managedFields",
})
"""The fields of a Kubernetes ObjectMeta (v1.20): any other key under ``metadata`` is lost."""

_PRESERVE = "x-kubernetes-preserve-unknown-fields"


def pruned_fields(obj: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Paths (``status.stages.a.delegation.sent``, ``spec.volumes[0].x``) of every field of
    ``obj`` a kube-apiserver would drop when storing it under the CRD schema ``schema``."""
    found: list[str] = []
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata" and isinstance(value, Mapping):
            found += [f"metadata.{name}" for name in value if name not in OBJECT_META_FIELDS]
            continue
        _field(value, _child(schema, key), key, found)
    return found


def _child(schema: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | bool | None:
    """The schema of entry ``key`` of an object; None when the object drops it, True when
    it keeps it unchecked."""
    if schema is None:
        return None
    properties = schema.get("properties") or {}
    if key in properties:
        return properties[key]
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        return additional
    if additional is True or schema.get(_PRESERVE):
        return True
    return None


def _field(value: Any, schema: Mapping[str, Any] | bool | None, path: str,
           found: list[str]) -> None:
    if schema is None:
        found.append(path)
        return
    if schema is True:
        return
    if value is None:
        if not schema.get("nullable"):
            found.append(path)
        return
    _walk(value, schema, path, found)


def _walk(value: Any, schema: Mapping[str, Any], path: str, found: list[str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _field(item, _child(schema, key), f"{path}.{key}", found)
    elif isinstance(value, list):
        items = schema.get("items")
        for index, item in enumerate(value):
            if isinstance(items, Mapping):
                if item is not None:
                    _walk(item, items, f"{path}[{index}]", found)
            elif not schema.get(_PRESERVE) and isinstance(item, Mapping):
                found += [f"{path}[{index}].{key}" for key in item]
