"""The PVC watchdog pod: measures the tenant PVC and reports it to `/storage/usages` with a
token of its tenant, which the provisioning controller issues through `Tokens`."""

from __future__ import annotations

from typing import Protocol

from cyclone.api import keys
from cyclone.engine.core.images import OWN_IMAGE_PULL_POLICY, TOOLBOX_IMAGE
from cyclone.kube import errors

WATCHDOG_TOKEN_SECRET = "cyclone-pvc-watcher-token"
WATCHDOG_IMAGE = TOOLBOX_IMAGE
REPORT_INTERVAL_SECONDS = 30
DATA_MOUNT = "/pvc-data"
TOKEN_MOUNT = "/var/run/cyclone"

WATCHDOG_SCRIPT = r"""
while true; do
  total=$(df -Pk "$DATA_DIR" | awk 'NR==2 {print $2 * 1024}')
  used=$(du -sk "$DATA_DIR" 2>/dev/null | awk '{print $1 * 1024}')
  items=""
  for dir in "$DATA_DIR"/*/; do
    [ -d "$dir" ] || continue
    size=$(du -sk "$dir" 2>/dev/null | awk '{print $1 * 1024}')
    items="$items${items:+,}\"$(basename "$dir")\":${size:-0}"
  done
  body="{\"total\":${total:-0},\"used\":${used:-0},\"items\":{$items}}"
  token=$(cat "$TOKEN_FILE")
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 10 -X POST -H "Content-Type: application/json" \
      -H "Authorization: Bearer $token" -d "$body" "$REPORT_URL" >/dev/null || true
  else
    timeout 10 wget -q -O /dev/null --header "Content-Type: application/json" \
      --header "Authorization: Bearer $token" --post-data "$body" "$REPORT_URL" || true
  fi
  sleep "$INTERVAL"
done
"""


def watchdog_pod_name(tenant: str) -> str:
    return f"cyclone-pvc-watcher-{tenant}"


def watchdog_token_id(integration: str) -> str:
    return f"pvc-watcher-{integration}"[:63].rstrip("-")


def watchdog_pod(tenant: str, namespace: str, pvc: str, server_url: str,
                 image: str = WATCHDOG_IMAGE) -> dict:
    labels = {
        keys.LABEL_POD_KIND: keys.POD_KIND_PVC_WATCHER,
        keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
        keys.LABEL_TENANT: tenant,
    }
    env = {
        "DATA_DIR": DATA_MOUNT,
        "TOKEN_FILE": f"{TOKEN_MOUNT}/token",
        "REPORT_URL": server_url.rstrip("/") + "/apis/v1alpha1/storage/usages",
        "INTERVAL": str(REPORT_INTERVAL_SECONDS),
        "TENANT": tenant,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": watchdog_pod_name(tenant), "namespace": namespace,
                     "labels": labels},
        "spec": {
            "restartPolicy": "Always",
            "containers": [{
                "name": "csc-pvc-watcher",
                "image": image,
                "imagePullPolicy": OWN_IMAGE_PULL_POLICY,
                "command": ["sh", "-c", WATCHDOG_SCRIPT],
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "100m", "memory": "64Mi"}},
                "volumeMounts": [
                    {"name": "data", "mountPath": DATA_MOUNT, "readOnly": True},
                    {"name": "token", "mountPath": TOKEN_MOUNT, "readOnly": True},
                ],
            }],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": pvc}},
                {"name": "token", "secret": {"secretName": WATCHDOG_TOKEN_SECRET}},
            ],
        },
    }


class Tokens(Protocol):
    """What the controller needs of the server's token authority."""

    async def issue(self, tenant: str, description: str, token_id: str) -> str: ...

    async def has(self, tenant: str, token_id: str) -> bool: ...

    async def revoke(self, tenant: str, token_id: str) -> None: ...


class AuthorityTokens:
    """`Tokens` of a `cyclone.server.auth.TokenAuthority`."""

    def __init__(self, authority) -> None:
        self._authority = authority

    async def issue(self, tenant: str, description: str, token_id: str) -> str:
        return (await self._authority.issue(tenant, description, token_id=token_id)).token

    async def has(self, tenant: str, token_id: str) -> bool:
        return any(t["id"] == token_id for t in await self._authority.list_tokens(tenant))

    async def revoke(self, tenant: str, token_id: str) -> None:
        try:
            await self._authority.revoke(tenant, token_id)
        except errors.NotFound:
            pass


ANNOTATION_WATCHER = "integration.cyclone.dev/pvc-watcher"
"""On a Cluster integration's Secret: `stopped` when the tenant stopped the PVC watchdog of
its workload namespace (`PUT /integrations/{i}/pvcwatcher?action=stop`); the provisioning
controller then keeps it stopped. Absent: the watchdog runs while the cluster is open."""
WATCHER_STOPPED = "stopped"


def watcher_wanted(secret: dict) -> bool:
    """Whether the integration's opening keeps a PVC watchdog running."""
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    return annotations.get(ANNOTATION_WATCHER) != WATCHER_STOPPED


def with_watcher_choice(annotations: dict[str, str], stored: dict | None) -> dict[str, str]:
    """`annotations` from a request, with the stored watchdog choice in place of any the
    request gives (only the pvcwatcher route writes it)."""
    kept = {k: v for k, v in annotations.items() if k != ANNOTATION_WATCHER}
    choice = (((stored or {}).get("metadata") or {}).get("annotations") or {}).get(
        ANNOTATION_WATCHER)
    if choice:
        kept[ANNOTATION_WATCHER] = choice
    return kept
