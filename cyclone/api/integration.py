"""Integration: an external system's address and credentials (stored in a Secret)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from cyclone.api.cluster import ClusterCredential
from cyclone.api.common import CycloneModel
from cyclone.api.meta import ObjectMeta


class IntegrationType(StrEnum):
    SCM = "SCM"
    DOCKER_REGISTRY = "DockerRegistry"
    SONAR_QUBE = "SonarQube"
    CLUSTER = "Cluster"
    GENERAL = "General"


class SCMType(StrEnum):
    GITHUB = "GitHub"
    GITLAB = "GitLab"
    SVN = "SVN"
    BITBUCKET = "Bitbucket"


class SCMSource(CycloneModel):
    type: SCMType
    server: str | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    auth_type: str | None = None


class DockerRegistrySource(CycloneModel):
    server: str | None = None
    user: str | None = None
    password: str | None = None


class SonarQubeSource(CycloneModel):
    server: str | None = None
    token: str | None = None


class ClusterSource(CycloneModel):
    cluster_name: str | None = None
    credential: ClusterCredential | None = None
    is_control_cluster: bool = False
    is_worker_cluster: bool = False
    namespace: str | None = Field(default=None, description="Workload namespace.")
    pvc: str | None = None


class GeneralItem(CycloneModel):
    name: str
    value: str | None = None


SOURCE_FIELD_BY_TYPE = {
    IntegrationType.SCM: "scm",
    IntegrationType.DOCKER_REGISTRY: "docker_registry",
    IntegrationType.SONAR_QUBE: "sonar_qube",
    IntegrationType.CLUSTER: "cluster",
    IntegrationType.GENERAL: "general",
}


class IntegrationSpec(CycloneModel):
    """``type`` and, beside it, the source object named after the type."""

    type: IntegrationType
    scm: SCMSource | None = None
    docker_registry: DockerRegistrySource | None = None
    sonar_qube: SonarQubeSource | None = None
    cluster: ClusterSource | None = None
    general: list[GeneralItem] | None = None

    def source(self) -> CycloneModel | list[GeneralItem] | None:
        """The source object of ``type``."""
        return getattr(self, SOURCE_FIELD_BY_TYPE[self.type])


class Integration(CycloneModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: IntegrationSpec

    @property
    def name(self) -> str:
        return self.metadata.name or ""
