"""Applying deploy/ manifests of any kind to a test control plane, as `kubectl apply` would
for a first install (create, or replace what exists), and server-side dry runs."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import httpx

from cyclone.devcluster import ControlPlane
from cyclone.devcluster.plane import write_kubeconfig

PLURALS = {
    "Namespace": ("namespaces", False),
    "ServiceAccount": ("serviceaccounts", True),
    "Secret": ("secrets", True),
    "ConfigMap": ("configmaps", True),
    "Service": ("services", True),
    "PersistentVolumeClaim": ("persistentvolumeclaims", True),
    "Deployment": ("deployments", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
}


def collection_path(obj: dict) -> str:
    plural, namespaced = PLURALS[obj["kind"]]
    api = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
    if namespaced:
        api += f"/namespaces/{obj['metadata']['namespace']}"
    return f"{api}/{plural}"


class Applier:
    """An admin client of a plane for objects the Cluster protocol has no Kind for."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.http = httpx.AsyncClient(
            base_url=plane.server, timeout=30,
            verify=ssl.create_default_context(cafile=str(plane.ca_file)),
            headers={"Authorization": f"Bearer {plane.token}"},
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def apply(self, obj: dict, *, dry_run: bool = False) -> dict:
        params = {"dryRun": "All"} if dry_run else {}
        response = await self.http.post(collection_path(obj), json=obj, params=params)
        if response.status_code == 409 and not dry_run:
            path = f"{collection_path(obj)}/{obj['metadata']['name']}"
            current = (await self.http.get(path)).json()
            replacement = {**obj, "metadata": {
                **obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
            response = await self.http.put(path, json=replacement)
        if response.status_code >= 300:
            raise AssertionError(f"{obj['kind']} {obj['metadata']['name']}: "
                                 f"{response.status_code} {response.text}")
        return response.json()

    async def service_account_token(self, namespace: str, name: str) -> str | None:
        """The token the controller-manager minted for a ServiceAccount (Kubernetes < 1.24)."""
        account = (await self.http.get(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")).json()
        for ref in account.get("secrets") or []:
            secret = (await self.http.get(
                f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")).json()
            token = (secret.get("data") or {}).get("token")
            if token:
                return base64.b64decode(token).decode()
        return None

    def kubeconfig_for(self, token: str, path: Path) -> Path:
        write_kubeconfig(path, name=self.plane.name, server=self.plane.server, token=token,
                         ca_file=self.plane.ca_file)
        return path
