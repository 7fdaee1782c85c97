"""Artifact routes under `…/workflowruns/{run}/artifacts`.

- `GET …/artifacts` — `{metadata:{total, itemsLength}, items:[{name, size, createdAt,
  expiresAt, stage}]}`.
- `GET …/artifacts/{a}` — the tarball, as an attachment.
- `DELETE …/artifacts/{a}` — 204.
- `POST …/artifacts/{a}?stage=` — upload; the request body is the tarball itself
  (`curl --data-binary @out.tar.gz -H 'Content-Type: application/gzip' …`). Authorised
  by a bearer token of the tenant, or by the run's upload token in `X-Upload-Token`
  (see `artifact_upload_token`), which is what the Http resolver of a stage pod gets.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse

from cyclone.kube import errors
from cyclone.server.artifacts.store import (
    ArtifactNotFound,
    ArtifactStore,
    InvalidArtifact,
    check_artifact_name,
)
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.logs.store import InvalidLogName, RunRef
from cyclone.server.state import ServerState

API_PREFIX = "/apis/v1alpha1"
RUN_PATH = "/projects/{project}/workflows/{workflow}/workflowruns/{run}"
_STORE_KEY = "artifact_store"
_UPLOAD_KEY = "artifact_upload_key"
ARTIFACT_RETENTION_KEY = "artifact_retention"
"""`state.extras` key of the retention period (a timedelta) the store is built with."""


def artifact_store_for(state: ServerState) -> ArtifactStore:
    """The artifact store of a server (one per process, kept in its state)."""
    store = state.extras.get(_STORE_KEY)
    if store is None:
        store = ArtifactStore(
            state.data_dir / "artifacts", retention=state.extras.get(ARTIFACT_RETENTION_KEY)
        )
        state.extras[_STORE_KEY] = store
    return store


def _upload_key(state: ServerState) -> bytes:
    key = state.extras.get(_UPLOAD_KEY)
    if key is None:
        path = state.data_dir / "artifact-upload-key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        key = bytes.fromhex(path.read_text().strip())
        state.extras[_UPLOAD_KEY] = key
    return key


def artifact_upload_token(state: ServerState, ref: RunRef) -> str:
    """A token that may upload artifacts of one run, and nothing else."""
    message = "/".join(ref.parts()).encode()
    return hmac.new(_upload_key(state), message, hashlib.sha256).hexdigest()


def _run_ref(tenant: str, project: str, workflow: str, run: str) -> RunRef:
    try:
        return RunRef(tenant, project, workflow, run)
    except InvalidLogName as err:
        raise errors.BadRequest(str(err)) from err


def _name(artifact: str) -> str:
    try:
        return check_artifact_name(artifact)
    except InvalidArtifact as err:
        raise errors.BadRequest(str(err)) from err


async def _uploading_tenant(
    request: Request,
    x_upload_token: str | None = Header(default=None),
    x_tenant: str | None = Header(default=None),
) -> str:
    """The tenant of an upload: from the run's upload token, else from the bearer token."""
    if x_upload_token is None:
        from cyclone.server.auth import current_principal
        from cyclone.server.auth import require_tenant as tenant_of

        principal = await current_principal(request, request.headers.get("authorization"))
        return await tenant_of(principal, x_tenant)
    params = request.path_params
    tenant = (x_tenant or "").strip()
    if not tenant:
        raise errors.BadRequest("an upload token needs the X-Tenant header")
    ref = _run_ref(tenant, params["project"], params["workflow"], params["run"])
    expected = artifact_upload_token(server_state(request), ref)
    if not hmac.compare_digest(expected, x_upload_token.strip()):
        raise errors.Unauthorized("invalid upload token")
    return tenant


def build_artifacts_router(prefix: str = API_PREFIX) -> APIRouter:
    """Routes over the artifact store of `request.app.state.cyclone`.

    `prefix` is where the API lives; pass "" when the app mounts the router under it.
    """
    router = APIRouter(prefix=prefix, tags=["artifacts"])

    @router.get(f"{RUN_PATH}/artifacts")
    async def list_artifacts(request: Request, project: str, workflow: str, run: str,
                             tenant: str = Depends(require_tenant)) -> dict:
        store = artifact_store_for(server_state(request))
        items = [vars(i) for i in store.list(_run_ref(tenant, project, workflow, run))]
        return {"metadata": {"total": len(items), "itemsLength": len(items)}, "items": items}

    @router.get(f"{RUN_PATH}/artifacts/{{artifact}}")
    async def download_artifact(request: Request, project: str, workflow: str, run: str,
                                artifact: str, tenant: str = Depends(require_tenant)
                                ) -> FileResponse:
        store = artifact_store_for(server_state(request))
        ref = _run_ref(tenant, project, workflow, run)
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
        try:
            store.delete(_run_ref(tenant, project, workflow, run), _name(artifact))
        except ArtifactNotFound as err:
            raise errors.NotFound(str(err)) from err
        return Response(status_code=204)

    @router.post(f"{RUN_PATH}/artifacts/{{artifact}}", status_code=201)
    async def upload_artifact(request: Request, project: str, workflow: str, run: str,
                              artifact: str, stage: str | None = Query(default=None),
                              tenant: str = Depends(_uploading_tenant)) -> dict:
        store = artifact_store_for(server_state(request))
        try:
            info = await store.save(_run_ref(tenant, project, workflow, run), _name(artifact),
                                    request.stream(), stage=stage)
        except InvalidArtifact as err:
            raise errors.BadRequest(str(err)) from err
        return vars(info)

    return router


def retention_from_days(days: float | None) -> timedelta | None:
    """A retention period from a number of days (None or <= 0: keep forever)."""
    if days is None or days <= 0:
        return None
    return timedelta(days=days)
