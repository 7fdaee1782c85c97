"""Request bodies of Cyclone objects and the metadata rules the server applies to them."""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cyclone.api import keys
from cyclone.kube import errors
from cyclone.kube.kinds import Kind

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SERVER_OWNED_METADATA = (
    "resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "generation",
    "managedFields", "selfLink", "deletionGracePeriodSeconds",
)


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, max_length=63, pattern=DNS_LABEL)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    resourceVersion: str | None = None


class ObjectBody(BaseModel):
    """A Cyclone object as sent by a client: metadata and spec (status is ignored)."""

    model_config = ConfigDict(extra="allow")

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: dict[str, Any] = Field(default_factory=dict)


def check_labels(labels: dict[str, str]) -> None:
    """Reject labels a Kubernetes API server would refuse, with the offending key."""
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
            raise errors.Invalid(f"metadata.labels: invalid label key {key!r}")
        if len(name) > 63 or not _LABEL_KEY_NAME.match(name):
            raise errors.Invalid(f"metadata.labels: invalid label key {key!r}")
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise errors.Invalid(f"metadata.labels[{key}]: invalid label value {value!r}")


def check_annotations(annotations: dict[str, str]) -> None:
    for key in annotations:
        prefix, _, name = key.rpartition("/")
        if (prefix and not _DNS_SUBDOMAIN.match(prefix)) or not _LABEL_KEY_NAME.match(name) \
                or len(name) > 63:
            raise errors.Invalid(f"metadata.annotations: invalid annotation key {key!r}")
    if sum(len(k) + len(v) for k, v in annotations.items()) > 256 * 1024:
        raise errors.Invalid("metadata.annotations: too large")


def slug(text: str, max_length: int = 50) -> str:
    """A DNS label made from free text (an alias), or '' when nothing usable remains."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return cleaned[:max_length].strip("-")


def random_suffix(length: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def resolve_name(meta: ObjectMeta, what: str) -> str:
    """The object's name: `metadata.name`, else one generated from `cyclone.dev/alias`."""
    if meta.name:
        return meta.name
    alias = meta.annotations.get(keys.ANNOTATION_ALIAS, "")
    base = slug(alias)
    if not alias.strip():
        raise errors.Invalid(
            f"metadata.name: a {what} needs metadata.name or a {keys.ANNOTATION_ALIAS} annotation"
        )
    if not base or base != alias:
        return f"{base or what.lower()}-{random_suffix()}"[:63]
    return base


def build_object(kind: Kind, body: ObjectBody, name: str, namespace: str | None,
                 labels: dict[str, str]) -> dict:
    """A new object from a request body: server-owned metadata dropped, labels enforced."""
    all_labels = {**body.metadata.labels, **labels}
    check_labels(all_labels)
    check_annotations(body.metadata.annotations)
    meta: dict[str, Any] = {"name": name, "labels": all_labels,
                            "annotations": dict(body.metadata.annotations)}
    if namespace and kind.namespaced:
        meta["namespace"] = namespace
    return {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta,
            "spec": dict(body.spec)}


def updated_object(stored: dict, body: ObjectBody, labels: dict[str, str]) -> dict:
    """The stored object with the body's spec, labels and annotations applied."""
    name = stored["metadata"]["name"]
    if body.metadata.name and body.metadata.name != name:
        raise errors.BadRequest(
            f"metadata.name {body.metadata.name!r} does not match the path name {name!r}"
        )
    all_labels = {**body.metadata.labels, **labels}
    check_labels(all_labels)
    check_annotations(body.metadata.annotations)
    obj = dict(stored)
    meta = dict(stored["metadata"])
    meta["labels"] = all_labels
    meta["annotations"] = dict(body.metadata.annotations)
    if body.metadata.resourceVersion:
        meta["resourceVersion"] = body.metadata.resourceVersion
    obj["metadata"] = meta
    obj["spec"] = dict(body.spec)
    return obj


def strip_server_metadata(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k not in _SERVER_OWNED_METADATA}
