"""Projects and what lives in them: resources, stages, workflows, workflow triggers."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from cyclone.api import keys
from cyclone.api.credentials import (
    MASK,
    WRITE_ONLY_NOTE,
    keep_credentials,
    mask_credentials,
)
from cyclone.api.trigger import WorkflowTrigger
from cyclone.engine.runstart import check_run_tenancy
from cyclone.kube import errors, kinds
from cyclone.server.crud import KindRoutes, crud_router
from cyclone.server.scopes import Scope, project_scope, tenant_scope, workflow_scope
from cyclone.server.validation import check_secret_references, check_stage_tenancy

log = logging.getLogger(__name__)
PROJECT_CONTENTS = (kinds.WORKFLOW_TRIGGER, kinds.WORKFLOW_RUN, kinds.WORKFLOW, kinds.STAGE,
                    kinds.RESOURCE)


async def _label_project(scope: Scope, obj: dict) -> None:
    obj["metadata"].setdefault("labels", {})[keys.LABEL_PROJECT] = obj["metadata"]["name"]


async def _delete_project_contents(scope: Scope, project: dict) -> None:
    """Everything labelled with the project goes with it."""
    selector = f"{keys.LABEL_PROJECT}={project['metadata']['name']}"
    for kind in PROJECT_CONTENTS:
        for obj in (await scope.cluster.list(kind, scope.namespace,
                                             label_selector=selector)).items:
            try:
                await scope.cluster.delete(kind, obj["metadata"]["name"], scope.namespace,
                                           propagation_policy="Background")
            except errors.NotFound:
                pass


async def _delete_workflow_contents(scope: Scope, workflow: dict) -> None:
    selector = (f"{keys.LABEL_PROJECT}={scope.project},"
                f"{keys.LABEL_WORKFLOW}={workflow['metadata']['name']}")
    for kind in (kinds.WORKFLOW_TRIGGER, kinds.WORKFLOW_RUN):
        for obj in (await scope.cluster.list(kind, scope.namespace,
                                             label_selector=selector)).items:
            try:
                await scope.cluster.delete(kind, obj["metadata"]["name"], scope.namespace,
                                           propagation_policy="Background")
            except errors.NotFound:
                pass


async def _point_at_workflow(scope: Scope, obj: dict) -> None:
    obj["spec"]["workflowRef"] = {"kind": "Workflow", "name": scope.workflow,
                                  "apiVersion": keys.API_VERSION}
    await check_run_tenancy(scope.cluster, scope.tenant, obj, "workflowtrigger")


async def _stage_within_tenant(scope: Scope, obj: dict) -> None:
    await check_stage_tenancy(scope.cluster, scope.tenant, obj)


async def _workflow_within_tenant(scope: Scope, obj: dict) -> None:
    check_secret_references(scope.tenant, obj, "workflow")


async def _resource_within_tenant(scope: Scope, obj: dict) -> None:
    check_secret_references(scope.tenant, obj, "resource")
    scm = obj["spec"].get("scm")
    if isinstance(scm, dict) and scm.get("secret") == MASK:
        del scm["secret"]


def _mask_trigger(obj: dict) -> dict:
    """A trigger's webhook secret (`spec.scm.secret`) is write-only, as integration
    credentials are: answers show `******`."""
    return mask_credentials(WorkflowTrigger, obj)


def _keep_trigger_secret(obj: dict, stored: dict) -> dict:
    return keep_credentials(WorkflowTrigger, obj, stored)


PROJECTS = KindRoutes(kinds.PROJECT, "project", "/projects", tenant_scope, "projects",
                      prepare=_label_project, after_delete=_delete_project_contents)
RESOURCES = KindRoutes(kinds.RESOURCE, "resource", "/projects/{project}/resources",
                       project_scope, "resources", prepare=_resource_within_tenant)
STAGES = KindRoutes(kinds.STAGE, "stage", "/projects/{project}/stages", project_scope,
                    "stages", prepare=_stage_within_tenant)
WORKFLOWS = KindRoutes(kinds.WORKFLOW, "workflow", "/projects/{project}/workflows",
                       project_scope, "workflows", prepare=_workflow_within_tenant,
                       after_delete=_delete_workflow_contents)
TRIGGERS = KindRoutes(kinds.WORKFLOW_TRIGGER, "workflowtrigger",
                      "/projects/{project}/workflows/{workflow}/workflowtriggers",
                      workflow_scope, "workflowtriggers", prepare=_point_at_workflow,
                      present=_mask_trigger, keep_stored=_keep_trigger_secret,
                      description=f"`spec.scm.secret` (the webhook secret): {WRITE_ONLY_NOTE}")


def catalog_router() -> APIRouter:
    router = APIRouter()
    for spec in (PROJECTS, RESOURCES, STAGES, WORKFLOWS, TRIGGERS):
        router.include_router(crud_router(spec))
    return router
