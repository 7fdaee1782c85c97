"""An integration's record: one Secret in the tenant's metadata namespace, its spec as JSON
under the data key `integration`, and the redacted shape answers show.

Credential fields (those `cyclone.api.integration` marks) are write-only: every answer shows
a set one as `******`, and an update that leaves one out or sends `******` keeps the stored
value, so a client can read, edit and write back an integration safely.
"""

from __future__ import annotations

import base64
import copy
import json

from cyclone.api import keys
from cyclone.api.credentials import keep_credentials, mask_credentials
from cyclone.api.integration import ANNOTATION_PROVISIONING, IntegrationSpec
from cyclone.engine.core.provisioning import provisioning_status
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster

DATA_KEY = "integration"


def redact(spec: dict) -> dict:
    """The spec as answers show it: every credential that is set reads `******`."""
    return mask_credentials(IntegrationSpec, spec)


def keep_stored_secrets(new: dict, stored: dict) -> dict:
    """Fill the credentials an update left out, or sent as `******`, with the stored values."""
    return keep_credentials(IntegrationSpec, new, stored)


def encode_spec(spec: dict) -> str:
    return base64.b64encode(json.dumps(spec).encode()).decode()


def spec_of_secret(secret: dict) -> dict:
    raw = (secret.get("data") or {}).get(DATA_KEY, "")
    try:
        return json.loads(base64.b64decode(raw) or b"{}")
    except ValueError:
        return {}


def to_api(secret: dict) -> dict:
    """The answer's shape; an opened Cluster integration also shows ``status.provisioning``
    (`cyclone.api.integration.ProvisioningStatus`), from the controller's annotation."""
    meta = secret.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    spec = spec_of_secret(secret)
    answer = {
        "kind": "Integration",
        "metadata": {
            "name": meta.get("name"),
            "annotations": {k: v for k, v in annotations.items()
                            if k != ANNOTATION_PROVISIONING},
            "labels": meta.get("labels") or {},
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": redact(spec),
    }
    status = provisioning_status(annotations, spec.get("cluster") or {})
    if status is not None:
        answer["status"] = {"provisioning": status}
    return answer


def secret_object(name: str, namespace: str, integration_type: str, spec: dict, *,
                  labels: dict[str, str] | None = None,
                  annotations: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**(labels or {}), keys.LABEL_INTEGRATION_TYPE: integration_type},
                     "annotations": dict(annotations or {})},
        "data": {DATA_KEY: encode_spec(spec)},
    }


def is_integration_secret(secret: dict | None) -> bool:
    return keys.LABEL_INTEGRATION_TYPE in (((secret or {}).get("metadata") or {})
                                           .get("labels") or {})


async def read_integration_secret(cluster: Cluster, tenant: str, name: str) -> dict:
    try:
        secret = await cluster.get(kinds.SECRET, name, keys.tenant_namespace(tenant))
    except errors.NotFound:
        secret = None
    if not secret or not is_integration_secret(secret):
        raise errors.NotFound(f"integration {name!r} not found")
    return secret


async def list_integration_secrets(cluster: Cluster, tenant: str,
                                   integration_type: str | None = None) -> list[dict]:
    selector = (f"{keys.LABEL_INTEGRATION_TYPE}={integration_type}" if integration_type
                else keys.LABEL_INTEGRATION_TYPE)
    listed = await cluster.list(kinds.SECRET, keys.tenant_namespace(tenant),
                                label_selector=selector)
    return listed.items


async def write_integration_spec(cluster: Cluster, secret: dict, spec: dict) -> dict:
    updated = copy.deepcopy(secret)
    updated["data"] = {**(secret.get("data") or {}), DATA_KEY: encode_spec(spec)}
    return await cluster.replace(updated)


async def write_provisioning_outcome(cluster: Cluster, secret: dict, outcome: str | None
                                     ) -> None:
    """Record the provisioning controller's `outcome` on the integration (None: remove it),
    unless it is recorded already; a Secret changed meanwhile is left alone, its change
    brings another reconcile."""
    meta = secret["metadata"]
    if (meta.get("annotations") or {}).get(ANNOTATION_PROVISIONING) == outcome:
        return
    try:
        await cluster.patch(kinds.SECRET, meta["name"],
                            {"metadata": {"annotations": {ANNOTATION_PROVISIONING: outcome}}},
                            meta["namespace"], resource_version=meta.get("resourceVersion"))
    except (errors.Conflict, errors.NotFound):
        pass
