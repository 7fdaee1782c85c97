"""Which secret values a stage pod can print, so that its stored log can mask them.

Three sources:
- Secrets the pod mounts or reads into its environment (`secretKeyRef`, `envFrom`,
  secret and projected volumes), in the pod's own cluster;
- the tenant's integrations (Secrets labelled `integration.cyclone.dev/type` in the
  metadata namespace of the control cluster): their secret fields are bound into
  resolver parameters as plain values;
- Secrets the run, its workflow or its stages name as `${secrets.<ns>:<secret>/…}`, which
  the engine renders into plain values.
Anything that cannot be read (deleted, forbidden) is skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.errors import ApiError
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

SECRET_FIELDS = {"password", "token", "bearerToken", "kubeConfig", "value", "secret",
                 "caData", "keyData", "certData"}
_SECRET_REFERENCE = re.compile(r"\$\{secrets\.([^:{}\s]+):([^/{}\s]+)")


def _decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def secret_data(secret: dict) -> dict[str, bytes]:
    data = {k: v for k, v in ((k, _decode(v)) for k, v in (secret.get("data") or {}).items())
            if v is not None}
    data.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def secret_fields_of_json(value: bytes) -> list[bytes]:
    """Values under secret field names in a JSON document (an integration's spec)."""
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return []
    found: list[bytes] = []

    def walk(node: object, secret: bool) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, secret or key in SECRET_FIELDS)
        elif isinstance(node, list):
            for child in node:
                walk(child, secret)
        elif isinstance(node, str) and secret:
            found.append(node.encode())

    walk(doc, False)
    return found


async def _read_secret(cluster: Cluster, name: str, namespace: str | None) -> dict | None:
    try:
        return await cluster.get(kinds.SECRET, name, namespace)
    except ApiError as err:
        log.debug("secret %s/%s not readable for masking: %s", namespace, name, err)
        return None


async def pod_secret_values(cluster: Cluster, pod: dict) -> list[bytes]:
    """The values of every Secret the pod's containers can see (env and volumes)."""
    namespace = pod.get("metadata", {}).get("namespace")
    spec = pod.get("spec") or {}
    wanted: dict[str, set[str] | None] = {}

    def want(secret: str | None, key: str | None) -> None:
        if not secret:
            return
        if key is None:
            wanted[secret] = None
        elif secret not in wanted:
            wanted[secret] = {key}
        elif wanted[secret] is not None:
            wanted[secret].add(key)  # type: ignore[union-attr]

    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for env in container.get("env") or []:
            ref = ((env.get("valueFrom") or {}).get("secretKeyRef")) or {}
            want(ref.get("name"), ref.get("key"))
        for source in container.get("envFrom") or []:
            want((source.get("secretRef") or {}).get("name"), None)
    for volume in spec.get("volumes") or []:
        want((volume.get("secret") or {}).get("secretName"), None)
        for projected in (volume.get("projected") or {}).get("sources") or []:
            want((projected.get("secret") or {}).get("name"), None)

    values: list[bytes] = []
    for name, selected in wanted.items():
        secret = await _read_secret(cluster, name, namespace)
        for key, value in secret_data(secret or {}).items():
            if selected is None or key in selected:
                values.append(value)
                values.extend(secret_fields_of_json(value))
    return values


async def _integration_values(control: Cluster, meta_namespace: str) -> list[bytes]:
    try:
        listed = await control.list(kinds.SECRET, meta_namespace,
                                    label_selector=keys.LABEL_INTEGRATION_TYPE)
    except ApiError as err:
        log.debug("integrations of %s not readable for masking: %s", meta_namespace, err)
        return []
    values: list[bytes] = []
    for secret in listed.items:
        for value in secret_data(secret).values():
            values.extend(secret_fields_of_json(value))
    return values


async def _referenced_secret_values(control: Cluster, pod: dict,
                                    meta_namespace: str) -> list[bytes]:
    labels = pod.get("metadata", {}).get("labels") or {}
    documents: list[dict] = []
    for kind, name in ((kinds.WORKFLOW_RUN, labels.get(keys.LABEL_WORKFLOWRUN)),
                       (kinds.WORKFLOW, labels.get(keys.LABEL_WORKFLOW)),
                       (kinds.STAGE, labels.get(keys.LABEL_STAGE))):
        if not name:
            continue
        try:
            documents.append((await control.get(kind, name, meta_namespace)).get("spec") or {})
        except ApiError:
            continue
    references = {m.groups() for m in _SECRET_REFERENCE.finditer(json.dumps(documents))}
    values: list[bytes] = []
    for namespace, name in sorted(references):
        secret = await _read_secret(control, name, namespace)
        for value in secret_data(secret or {}).values():
            values.append(value)
            values.extend(secret_fields_of_json(value))
    return values


async def control_secret_values(control: Cluster, pod: dict, meta_namespace: str
                                ) -> list[bytes]:
    """Secret values a pod receives as plain values: integrations and `${secrets…}`."""
    return [*await _integration_values(control, meta_namespace),
            *await _referenced_secret_values(control, pod, meta_namespace)]
