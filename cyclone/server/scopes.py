"""Where a request's objects live: tenant namespace, and the project and workflow above them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastapi import Depends
from fastapi import Path as PathParam

from cyclone.api import keys
from cyclone.engine.runstages import read_run
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import read_tenant

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_OBJECT_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Scope:
    tenant: str
    namespace: str
    cluster: Cluster
    project: str | None = None
    workflow: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def selector(self) -> str | None:
        return ",".join(f"{k}={v}" for k, v in self.labels.items()) or None

    def owns(self, obj: dict) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())


async def get_owned(scope: Scope, kind: kinds.Kind, name: str, what: str) -> dict:
    """An object of the scope, or NotFound (also when it belongs to another project, and
    for a name no object can have: on a kube-apiserver `.` or `..` would read another
    path)."""
    if not _OBJECT_NAME.match(name):
        raise errors.NotFound(f"{what} {name!r} not found")
    try:
        obj = await scope.cluster.get(kind, name, scope.namespace)
    except errors.NotFound:
        obj = None
    if obj is None or not scope.owns(obj):
        raise errors.NotFound(f"{what} {name!r} not found")
    if kind is kinds.WORKFLOW_RUN:
        return await read_run(scope.cluster, obj)
    return obj


async def tenant_scope(
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> Scope:
    await read_tenant(state.cluster, tenant)
    return Scope(tenant, keys.tenant_namespace(tenant), state.cluster)


async def project_scope(
    project: str = PathParam(max_length=253),
    scope: Scope = Depends(tenant_scope),
) -> Scope:
    await get_owned(scope, kinds.PROJECT, project, "project")
    return Scope(scope.tenant, scope.namespace, scope.cluster, project,
                 labels={keys.LABEL_PROJECT: project})


async def workflow_scope(
    workflow: str = PathParam(max_length=253),
    scope: Scope = Depends(project_scope),
) -> Scope:
    await get_owned(scope, kinds.WORKFLOW, workflow, "workflow")
    return Scope(scope.tenant, scope.namespace, scope.cluster, scope.project, workflow,
                 labels={**scope.labels, keys.LABEL_WORKFLOW: workflow})
