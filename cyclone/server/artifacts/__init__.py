"""Artifacts uploaded by stages: the store, its retention sweep and the routes."""

from cyclone.server.artifacts.routes import (
    ARTIFACT_RETENTION_KEY,
    artifact_store_for,
    artifact_upload_token,
    build_artifacts_router,
)
from cyclone.server.artifacts.store import ArtifactInfo, ArtifactStore

__all__ = [
    "ARTIFACT_RETENTION_KEY",
    "ArtifactInfo",
    "ArtifactStore",
    "artifact_store_for",
    "artifact_upload_token",
    "build_artifacts_router",
]
