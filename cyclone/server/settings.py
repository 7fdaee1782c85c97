"""`GET /settings`: the server's effective settings, for an admin (nothing secret)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from cyclone.server.auth import Principal, require_admin, server_state
from cyclone.server.state import ServerState


class PVCDefaults(BaseModel):
    size: str
    storageClass: str = Field(description="Empty: the cluster's default StorageClass.")


class EffectiveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    openControlCluster: bool = Field(
        description="A new tenant gets the control cluster opened for it.")
    defaultPersistentVolumeClaim: PVCDefaults = Field(
        description="The PVC of a tenant created without spec.persistentVolumeClaim.")
    defaultResourceQuota: dict[str, str] = Field(
        description="The quota of a tenant created without spec.resourceQuota.")
    webURLTemplate: str = Field(
        description="The link of a run in commit statuses and notifications.")
    notificationEndpoints: list[str] = Field(
        description="Names of the endpoints every finished run is POSTed to (as far as this "
        "server knows the engine's configuration; their URLs are not shown).")


router = APIRouter(tags=["settings"])


@router.get("/settings", response_model=EffectiveSettings,
            summary="The server's effective settings (admin)")
async def get_settings(
    state: ServerState = Depends(server_state),
    _: Principal = Depends(require_admin),
) -> dict:
    return state.settings.shown(state.server_url)
