"""Reading what masking a stage's outputs needs: the secret values a stage pod could see.

How observed facts fold into stage statuses is decided in `cyclone.engine.core.observing`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from cyclone.api import keys
from cyclone.engine.controllers.secrets import secret_references
from cyclone.engine.core.masking import (
    Masker,
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


async def _secret(cluster: Cluster, name: str, namespace: str | None) -> dict | None:
    try:
        return await cluster.get(kinds.SECRET, name, namespace)
    except ApiError as err:
        log.debug("secret %s/%s not readable for masking: %s", namespace, name, err)
        return None


async def output_masker(control: Cluster, pod_cluster: Cluster, run: dict,
                        documents: Iterable[object], pod: dict) -> Masker:
    """A masker for every secret value a stage pod could see: the Secrets it reads (env,
    envFrom, volumes), the ``${secrets…}`` its run, workflow and stages (``documents``)
    name, and the credentials of its tenant's integrations."""
    meta_namespace = run["metadata"]["namespace"]
    pod_namespace = (pod.get("metadata") or {}).get("namespace")
    values: list[bytes | str] = []
    for name, selected in pod_secret_refs(pod).items():
        if pod_secret_readable(name):
            values += masked_values(await _secret(pod_cluster, name, pod_namespace), selected)
    for namespace, name in sorted(secret_references(*documents)):
        if referenced_secret_readable(meta_namespace, namespace, name):
            values += masked_values(await _secret(control, name, namespace))
    try:
        listed = await control.list(kinds.SECRET, meta_namespace,
                                    label_selector=keys.LABEL_INTEGRATION_TYPE)
        for secret in listed.items:
            values += integration_values(secret)
    except ApiError as err:
        log.warning("integrations of %s not readable for masking outputs: %s",
                    meta_namespace, err)
    return Masker(values)
