"""Artifact routes under `…/workflowruns/{run}/artifacts`.

- `GET …/artifacts` — `{metadata:{total, itemsLength}, items:[{name, size, createdAt,
  expiresAt, stage}]}`.
- `GET …/artifacts/{a}` — the tarball, as an attachment.
- `DELETE …/artifacts/{a}` — 204.
- `POST …/artifacts/{a}?stage=`, or `POST …/artifacts?name={a}` (or `X-Artifact-Name`,
  as the Http resolver sends it) — upload; the request body is the tarball itself
  (`curl --data-binary @out.tar.gz -H 'Content-Type: application/gzip' …`). Authorised
  by a bearer token of the tenant, or by the run's upload token (`artifact_upload_token`)
  as the bearer token or in `X-Upload-Token`: that is what a stage pod's Http resolver
  gets, so it can upload to its own run while it runs, and nothing else.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse

from cyclone.api import keys
from cyclone.engine.core.tokens import (
    Purpose,
    check_run_token,
    is_upload_token,
    run_workflow,
    upload_token_tenant,
)
from cyclone.engine.core.tokens import artifact_upload_token as run_upload_token
from cyclone.engine.runstages import read_run
from cyclone.engine.signing import token_key
from cyclone.kube import errors, kinds
from cyclone.server.artifacts.store import (
    ArtifactNotFound,
    ArtifactStore,
    ArtifactTooLarge,
    InvalidArtifact,
    check_artifact_name,
)
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.logs.store import InvalidLogName, RunRef
from cyclone.server.state import ServerState

log = logging.getLogger(__name__)

API_PREFIX = "/apis/v1alpha1"
RUN_PATH = "/projects/{project}/workflows/{workflow}/workflowruns/{run}"
_STORE_KEY = "artifact_store"
UPLOAD_KEY = "artifact_upload_key"
"""`state.extras` key of the upload-token key, once derived."""
ARTIFACT_RETENTION_KEY = "artifact_retention"
"""`state.extras` key of the retention period (a timedelta) the store is built with."""


class PayloadTooLarge(errors.ApiError):
    code = 413
    reason = "RequestEntityTooLarge"


def artifact_store_for(state: ServerState) -> ArtifactStore:
    """The artifact store of a server (one per process, kept in its state)."""
    store = state.extras.get(_STORE_KEY)
    if store is None:
        store = ArtifactStore(
            state.data_dir / "artifacts", retention=state.extras.get(ARTIFACT_RETENTION_KEY),
            max_bytes=state.limits.max_artifact_bytes,
        )
        state.extras[_STORE_KEY] = store
    return store


INVALID_UPLOAD_TOKEN = "invalid upload token"
"""The one answer to an upload token that does not fit the run of the path, whatever the
reason (no such tenant or run, another run's token, a finished run), so that it tells
nothing about what exists."""


async def upload_key_of(state: ServerState) -> bytes:
    """The key of upload tokens, derived from the engine's key Secret (read once)."""
    key = state.extras.get(UPLOAD_KEY)
    if key is None:
        key = await token_key(state.cluster, state.engine_key_namespace,
                              Purpose.ARTIFACT_UPLOAD)
        state.extras[UPLOAD_KEY] = key
    return key


async def artifact_upload_token(state: ServerState, tenant: str, run_uid: str) -> str:
    """A token that may upload artifacts of one run (by its uid), and nothing else: the
    one the engine gives the run's Http push resolvers."""
    return run_upload_token(await upload_key_of(state), tenant, run_uid)


async def _run_of(state: ServerState, tenant: str, run: str) -> dict | None:
    try:
        return await read_run(state.cluster, await state.cluster.get(
            kinds.WORKFLOW_RUN, run, keys.tenant_namespace(tenant)))
    except (errors.NotFound, errors.BadRequest, errors.Invalid):
        return None


async def _workflow_project(state: ServerState, run: dict) -> str | None:
    """The project label of the run's workflow, for a run created without one."""
    if (run["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT) or not run_workflow(run):
        return None
    try:
        workflow = await state.cluster.get(kinds.WORKFLOW, run_workflow(run),
                                           run["metadata"]["namespace"])
    except (errors.NotFound, errors.BadRequest, errors.Invalid):
        return None
    return (workflow["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT)


async def _check_upload_token(request: Request, token: str, x_tenant: str | None) -> str:
    """The tenant whose run of the path `token` may upload to; 401 otherwise."""
    state = server_state(request)
    params = request.path_params
    tenant = upload_token_tenant(token)
    if tenant is None or (x_tenant and x_tenant.strip() != tenant):
        raise errors.Unauthorized(INVALID_UPLOAD_TOKEN)
    try:
        RunRef(tenant, params["project"], params["workflow"], params["run"])
    except InvalidLogName as err:
        raise errors.Unauthorized(INVALID_UPLOAD_TOKEN) from err
    run = await _run_of(state, tenant, params["run"])
    uid = ((run or {}).get("metadata") or {}).get("uid", "")
    refusal = check_run_token(
        run, token, await artifact_upload_token(state, tenant, uid),
        project=params["project"], workflow=params["workflow"],
        workflow_project=await _workflow_project(state, run) if run else None)
    if refusal is not None:
        log.info("upload to %s/%s refused: %s", tenant, params["run"], refusal.value)
        raise errors.Unauthorized(INVALID_UPLOAD_TOKEN)
    return tenant


def _run_ref(tenant: str, project: str, workflow: str, run: str) -> RunRef:
    try:
        return RunRef(tenant, project, workflow, run)
    except InvalidLogName as err:
        raise errors.BadRequest(str(err)) from err


async def _stored_ref(request: Request, tenant: str, project: str, workflow: str,
                      run: str) -> RunRef:
    """Where the run of the path keeps its artifacts: under its current uid (404 when
    there is no such run)."""
    from cyclone.server.logs.rundata import resolve_run_ref

    return await resolve_run_ref(server_state(request).cluster,
                                 _run_ref(tenant, project, workflow, run))


def _name(artifact: str) -> str:
    try:
        return check_artifact_name(artifact)
    except InvalidArtifact as err:
        raise errors.BadRequest(str(err)) from err


def _bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _uploading_tenant(
    request: Request,
    x_upload_token: str | None = Header(default=None),
    x_tenant: str | None = Header(default=None),
    authorization: str | None = Header(default=None),
) -> str:
    """The tenant of an upload: from the run's upload token (in `X-Upload-Token` or as the
    bearer token), else from a tenant or admin bearer token.

    An upload token works only for the run it was made for (the run of the path, with the
    same uid), and only until that run finishes or is deleted."""
    token = (x_upload_token or "").strip() or _bearer(authorization)
    if not is_upload_token(token):
        from cyclone.server.auth import current_principal
        from cyclone.server.auth import require_tenant as tenant_of

        principal = await current_principal(request, authorization)
        return await tenant_of(principal, x_tenant)
    return await _check_upload_token(request, token or "", x_tenant)


def build_artifacts_router(prefix: str = API_PREFIX) -> APIRouter:
    """Routes over the artifact store of `request.app.state.cyclone`.

    `prefix` is where the API lives; pass "" when the app mounts the router under it.
    """
    router = APIRouter(prefix=prefix, tags=["artifacts"])

    @router.get(f"{RUN_PATH}/artifacts")
    async def list_artifacts(request: Request, project: str, workflow: str, run: str,
                             tenant: str = Depends(require_tenant)) -> dict:
        store = artifact_store_for(server_state(request))
        ref = await _stored_ref(request, tenant, project, workflow, run)
        items = [vars(i) for i in store.list(ref)]
        return {"metadata": {"total": len(items), "itemsLength": len(items)}, "items": items}

    @router.get(f"{RUN_PATH}/artifacts/{{artifact}}")
    async def download_artifact(request: Request, project: str, workflow: str, run: str,
                                artifact: str, tenant: str = Depends(require_tenant)
                                ) -> FileResponse:
        store = artifact_store_for(server_state(request))
        ref = await _stored_ref(request, tenant, project, workflow, run)
        try:
            store.info(ref, _name(artifact))
        except ArtifactNotFound as err:
            raise errors.NotFound(str(err)) from err
        return FileResponse(store.path(ref, artifact), filename=artifact,
                            media_type="application/octet-stream")

    @router.delete(f"{RUN_PATH}/artifacts/{{artifact}}", status_code=204)
    async def delete_artifact(request: Request, project: str, workflow: str, run: str,
                              artifact: str, tenant: str = Depends(require_tenant)) -> Response:
        store = artifact_store_for(server_state(request))
        ref = await _stored_ref(request, tenant, project, workflow, run)
        try:
            store.delete(ref, _name(artifact))
        except ArtifactNotFound as err:
            raise errors.NotFound(str(err)) from err
        return Response(status_code=204)

    async def upload(request: Request, tenant: str, project: str, workflow: str, run: str,
                     artifact: str, stage: str | None) -> dict:
        store = artifact_store_for(server_state(request))
        ref = await _stored_ref(request, tenant, project, workflow, run)
        try:
            info = await store.save(ref, _name(artifact), request.stream(), stage=stage)
        except ArtifactTooLarge as err:
            raise PayloadTooLarge(str(err)) from err
        except InvalidArtifact as err:
            raise errors.BadRequest(str(err)) from err
        return vars(info)

    @router.post(f"{RUN_PATH}/artifacts/{{artifact}}", status_code=201)
    async def upload_artifact(request: Request, project: str, workflow: str, run: str,
                              artifact: str, stage: str | None = Query(default=None),
                              tenant: str = Depends(_uploading_tenant)) -> dict:
        """Upload an artifact: the body is the tarball."""
        return await upload(request, tenant, project, workflow, run, artifact, stage)

    @router.post(f"{RUN_PATH}/artifacts", status_code=201)
    async def upload_named_artifact(
        request: Request, project: str, workflow: str, run: str,
        name: str | None = Query(default=None),
        x_artifact_name: str | None = Header(default=None),
        stage: str | None = Query(default=None),
        tenant: str = Depends(_uploading_tenant),
    ) -> dict:
        """Upload as the Http resolver does: name in `?name=` or `X-Artifact-Name`."""
        artifact = name or x_artifact_name
        if not artifact:
            raise errors.BadRequest("name the artifact with ?name= or X-Artifact-Name")
        return await upload(request, tenant, project, workflow, run, artifact, stage)

    return router


def retention_from_days(days: float | None) -> timedelta | None:
    """A retention period from a number of days (None or <= 0: keep forever)."""
    if days is None or days <= 0:
        return None
    return timedelta(days=days)
