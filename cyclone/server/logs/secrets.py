"""Which secret values a stage pod can print, so that its stored log can mask them.

Three sources:
- Secrets the pod mounts or reads into its environment (`secretKeyRef`, `envFrom`,
  secret and projected volumes), in the pod's own cluster;
- the tenant's integrations (Secrets labelled `integration.cyclone.dev/type` in the
  metadata namespace of the control cluster): every string of their credential fields, and
  of any field the integration models do not declare;
- Secrets the run, its workflow or its stages name as `${secrets.<ns>:<secret>/…}`, which
  the engine renders into plain values (only those its tenant may read: the engine renders
  no other, and masking with another tenant's value would be an oracle for it).
Of a Secret that is an integration only the credentials are masked, wherever it is read
from (`masking.masked_values`): its type and server URL stay readable.
Which values and pieces of values are masked is `cyclone.engine.core.masking`. Anything
that cannot be read (deleted, forbidden) is skipped.
"""

from __future__ import annotations

import json
import logging
import re

from cyclone.api import keys
from cyclone.engine.core.masking import (
    integration_values,
    masked_values,
    pod_secret_readable,
    pod_secret_refs,
    referenced_secret_readable,
)
from cyclone.kube import kinds
from cyclone.kube.errors import ApiError
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

_SECRET_REFERENCE = re.compile(r"\$\{secrets\.([^:{}\s]+):([^/{}\s]+)")


async def _read_secret(cluster: Cluster, name: str, namespace: str | None) -> dict | None:
    try:
        return await cluster.get(kinds.SECRET, name, namespace)
    except ApiError as err:
        log.debug("secret %s/%s not readable for masking: %s", namespace, name, err)
        return None


async def pod_secret_values(cluster: Cluster, pod: dict) -> list[bytes | str]:
    """The values of every Secret the pod's containers can see (env and volumes)."""
    namespace = pod.get("metadata", {}).get("namespace")
    values: list[bytes | str] = []
    for name, selected in pod_secret_refs(pod).items():
        if not pod_secret_readable(name):
            continue
        values.extend(masked_values(await _read_secret(cluster, name, namespace), selected))
    return values


async def integration_secret_values(control: Cluster, meta_namespace: str) -> list[str]:
    """Every credential string of the tenant's integrations."""
    try:
        listed = await control.list(kinds.SECRET, meta_namespace,
                                    label_selector=keys.LABEL_INTEGRATION_TYPE)
    except ApiError as err:
        log.debug("integrations of %s not readable for masking: %s", meta_namespace, err)
        return []
    return [value for secret in listed.items for value in integration_values(secret)]


async def _referenced_secret_values(control: Cluster, pod: dict,
                                    meta_namespace: str) -> list[bytes | str]:
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
    values: list[bytes | str] = []
    for namespace, name in sorted(references):
        if not referenced_secret_readable(meta_namespace, namespace, name):
            continue
        values.extend(masked_values(await _read_secret(control, name, namespace)))
    return values


async def control_secret_values(control: Cluster, pod: dict, meta_namespace: str
                                ) -> list[bytes | str]:
    """Secret values a pod receives as plain values: integrations and `${secrets…}`."""
    return [*await integration_secret_values(control, meta_namespace),
            *await _referenced_secret_values(control, pod, meta_namespace)]
