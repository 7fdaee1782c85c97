"""Integrations: one Secret per integration, its spec as JSON under the data key `integration`.

Secret fields never leave the server: answers drop them, and an update that omits one keeps
the stored value, so a client can read, edit and write back an integration safely.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cyclone.api import keys
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.listing import ListQuery, list_query, paginate
from cyclone.server.objects import DNS_LABEL, check_annotations, resolve_name
from cyclone.server.state import ServerState

DATA_KEY = "integration"
RESERVED_SECRET_NAMES = frozenset({"cyclone-tenant-tokens", "cyclone-engine-key",
                                   "cyclone-pvc-watcher-token"})
_OPTIONAL_DNS_LABEL = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"
IntegrationType = Literal["SCM", "DockerRegistry", "SonarQube", "Cluster", "General"]
_SOURCE_FIELD = {"SCM": "scm", "DockerRegistry": "dockerRegistry", "SonarQube": "sonarQube",
                 "Cluster": "cluster", "General": "general"}
_SECRET_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "scm": (("password",), ("token",), ("webhookSecret",)),
    "dockerRegistry": (("password",),),
    "sonarQube": (("token",),),
    "cluster": (("credential", "password"), ("credential", "bearerToken"),
                ("credential", "kubeConfig")),
}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ScmSource(_Open):
    type: Literal["GitHub", "GitLab", "SVN", "Bitbucket"] = "GitHub"
    server: str = ""
    user: str = ""
    password: str | None = None
    token: str | None = None
    authType: str = ""
    webhookSecret: str | None = Field(
        default=None, description="Verifies the signatures of this SCM's webhooks")


class DockerRegistrySource(_Open):
    server: str = ""
    user: str = ""
    password: str | None = None


class SonarQubeSource(_Open):
    server: str = ""
    token: str | None = None


class TlsClientConfig(_Open):
    insecure: bool = False
    caFile: str = ""
    caData: str = ""


class ClusterCredential(_Open):
    server: str = ""
    user: str = ""
    password: str | None = None
    bearerToken: str | None = None
    tlsClientConfig: TlsClientConfig | None = None
    kubeConfig: str | dict | None = None


class ClusterSource(_Open):
    clusterName: str = Field(default="", max_length=63, pattern=_OPTIONAL_DNS_LABEL)
    credential: ClusterCredential = Field(default_factory=ClusterCredential)
    isControlCluster: bool = False
    isWorkerCluster: bool = False
    namespace: str = Field(default="", max_length=63, pattern=_OPTIONAL_DNS_LABEL)
    pvc: str = Field(default="", max_length=253)


class GeneralItem(_Open):
    name: str = Field(min_length=1, max_length=253)
    value: str | None = None


class IntegrationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: IntegrationType
    scm: ScmSource | None = None
    dockerRegistry: DockerRegistrySource | None = None
    sonarQube: SonarQubeSource | None = None
    cluster: ClusterSource | None = None
    general: list[GeneralItem] | None = None

    @model_validator(mode="after")
    def _source_matches_type(self) -> IntegrationSpec:
        field = _SOURCE_FIELD[self.type]
        if getattr(self, field) is None:
            raise ValueError(f"spec.{field} is required for an integration of type {self.type}")
        for other in _SOURCE_FIELD.values():
            if other != field and getattr(self, other) is not None:
                raise ValueError(f"spec.{other} does not belong to type {self.type}")
        return self


class IntegrationMeta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(default=None, max_length=63, pattern=DNS_LABEL)
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class Integration(BaseModel):
    metadata: IntegrationMeta = Field(default_factory=IntegrationMeta)
    spec: IntegrationSpec


def _get_path(data: dict, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _set_path(data: dict, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value


def _drop_path(data: dict, path: tuple[str, ...]) -> None:
    for part in path[:-1]:
        data = data.get(part)
        if not isinstance(data, dict):
            return
    if isinstance(data, dict):
        data.pop(path[-1], None)


def redact(spec: dict) -> dict:
    """The spec without any secret field."""
    out = copy.deepcopy(spec)
    for source, paths in _SECRET_PATHS.items():
        if isinstance(out.get(source), dict):
            for path in paths:
                _drop_path(out[source], path)
    if isinstance(out.get("general"), list):
        out["general"] = [{k: v for k, v in item.items() if k != "value"}
                          for item in out["general"] if isinstance(item, dict)]
    return out


def keep_stored_secrets(new: dict, stored: dict) -> dict:
    """Fill the secret fields an update left out with the stored values."""
    merged = copy.deepcopy(new)
    for source, paths in _SECRET_PATHS.items():
        if not isinstance(merged.get(source), dict) or not isinstance(stored.get(source), dict):
            continue
        for path in paths:
            if _get_path(merged[source], path) is None and \
                    _get_path(stored[source], path) is not None:
                _set_path(merged[source], path, _get_path(stored[source], path))
    if isinstance(merged.get("general"), list) and isinstance(stored.get("general"), list):
        old = {i.get("name"): i.get("value") for i in stored["general"] if isinstance(i, dict)}
        for item in merged["general"]:
            if item.get("value") is None and old.get(item.get("name")) is not None:
                item["value"] = old[item["name"]]
    return merged


def spec_of_secret(secret: dict) -> dict:
    raw = (secret.get("data") or {}).get(DATA_KEY, "")
    try:
        return json.loads(base64.b64decode(raw) or b"{}")
    except ValueError:
        return {}


def _dump_spec(spec: IntegrationSpec) -> dict:
    return spec.model_dump(exclude_none=True)


def to_api(secret: dict) -> dict:
    meta = secret.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "annotations": meta.get("annotations") or {},
            "labels": meta.get("labels") or {},
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": redact(spec_of_secret(secret)),
    }


def secret_object(name: str, namespace: str, integration: Integration, spec: dict) -> dict:
    labels = {**integration.metadata.labels,
              keys.LABEL_INTEGRATION_TYPE: integration.spec.type}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": dict(integration.metadata.annotations)},
        "data": {DATA_KEY: base64.b64encode(json.dumps(spec).encode()).decode()},
    }


async def read_integration_secret(cluster: Cluster, tenant: str, name: str) -> dict:
    try:
        secret = await cluster.get(kinds.SECRET, name, keys.tenant_namespace(tenant))
    except errors.NotFound:
        secret = None
    if not secret or keys.LABEL_INTEGRATION_TYPE not in (secret["metadata"].get("labels") or {}):
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
    updated["data"] = {**(secret.get("data") or {}),
                       DATA_KEY: base64.b64encode(json.dumps(spec).encode()).decode()}
    return await cluster.replace(updated)


def _check_placement_kept(old: dict, new: dict) -> None:
    """An opened cluster keeps where its objects are until it is closed."""
    if not old.get("isWorkerCluster"):
        return
    for field in ("clusterName", "namespace", "pvc", "isControlCluster"):
        if (old.get(field) or None) != (new.get(field) or None):
            raise errors.Conflict(f"spec.cluster.{field} cannot change while the cluster is "
                                  "open; close it first")


router = APIRouter(tags=["integrations"])


@router.get("/integrations")
async def list_integrations(
    query: ListQuery = Depends(list_query),
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    from cyclone.server.tenants import read_tenant

    await read_tenant(state.cluster, tenant)
    return paginate([to_api(s) for s in await list_integration_secrets(state.cluster, tenant)],
                    query)


@router.post("/integrations", status_code=201)
async def create_integration(
    body: Integration,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    from cyclone.server.tenants import read_tenant

    await read_tenant(state.cluster, tenant)
    check_annotations(body.metadata.annotations)
    name = resolve_name(body.metadata, "integration")  # type: ignore[arg-type]
    if name in RESERVED_SECRET_NAMES:
        raise errors.Invalid(f"metadata.name: {name!r} is reserved by Cyclone")
    namespace = keys.tenant_namespace(tenant)
    try:
        created = await state.cluster.create(
            secret_object(name, namespace, body, _dump_spec(body.spec)), namespace=namespace
        )
    except errors.AlreadyExists as exc:
        raise errors.AlreadyExists(f"integration {name!r} already exists") from exc
    return to_api(created)


@router.get("/integrations/{integration}")
async def get_integration(
    integration: str,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    return to_api(await read_integration_secret(state.cluster, tenant, integration))


@router.put("/integrations/{integration}")
async def update_integration(
    integration: str,
    body: Integration,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    if body.metadata.name and body.metadata.name != integration:
        raise errors.BadRequest(f"metadata.name {body.metadata.name!r} is not {integration!r}")
    check_annotations(body.metadata.annotations)
    stored = await read_integration_secret(state.cluster, tenant, integration)
    old_spec = spec_of_secret(stored)
    if old_spec.get("type") != body.spec.type:
        raise errors.BadRequest("the type of an integration cannot change")
    spec = keep_stored_secrets(_dump_spec(body.spec), old_spec)
    if body.spec.type == "Cluster":
        _check_placement_kept(old_spec.get("cluster") or {}, spec["cluster"])
        spec["cluster"]["isWorkerCluster"] = bool(old_spec.get("cluster", {})
                                                  .get("isWorkerCluster"))
    fresh = secret_object(integration, keys.tenant_namespace(tenant), body, spec)
    fresh["metadata"]["resourceVersion"] = stored["metadata"].get("resourceVersion")
    return to_api(await state.cluster.replace(fresh))


@router.delete("/integrations/{integration}", status_code=204)
async def delete_integration(
    integration: str,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> Response:
    secret = await read_integration_secret(state.cluster, tenant, integration)
    spec = spec_of_secret(secret)
    if spec.get("type") == "Cluster" and (spec.get("cluster") or {}).get("isWorkerCluster"):
        from cyclone.server.clusters import close_cluster

        await close_cluster(state, tenant, secret)
    try:
        await state.cluster.delete(kinds.SECRET, integration, keys.tenant_namespace(tenant))
    except errors.NotFound:
        pass
    return Response(status_code=204)
