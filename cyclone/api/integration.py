"""Integration: an external system's address and credentials (stored in a Secret).

These models are the one description of an integration: the server parses request bodies
with them, ``cyclone apply`` validates with them, and the credential fields they mark
(``CREDENTIAL``) are what answers mask and what logs and stage outputs are masked for.
Every source model refuses fields it does not declare.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from cyclone.api.common import CycloneModel, FreeForm
from cyclone.api.credentials import CREDENTIAL, WRITE_ONLY_NOTE, credential_values
from cyclone.api.meta import ObjectMeta

_OPTIONAL_DNS_LABEL = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"


def _secret(what: str) -> Any:
    return Field(default=None, description=f"{what}. {WRITE_ONLY_NOTE}")


SecretText = Annotated[str | None, CREDENTIAL]


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


class _Source(CycloneModel):
    """An integration's source: camelCase, and any field it does not declare is refused."""

    model_config = ConfigDict(extra="forbid")


class SCMSource(_Source):
    type: SCMType = SCMType.GITHUB
    server: str | None = None
    user: str | None = None
    password: SecretText = _secret("Password of `user`")
    token: SecretText = _secret("API token")
    auth_type: str | None = None
    webhook_secret: SecretText = _secret("Verifies the signatures of this SCM's webhooks")
    register_webhook: bool | None = Field(
        default=None,
        description="false: the engine does not register webhooks on the repositories.")

    def model_post_init(self, context: Any, /) -> None:
        self.model_fields_set.add("type")  # readers of a stored SCM source need its type


class DockerRegistrySource(_Source):
    server: str | None = None
    user: str | None = None
    password: SecretText = _secret("Password of `user`")


class SonarQubeSource(_Source):
    server: str | None = None
    token: SecretText = _secret("API token")


class TLSClientConfig(_Source):
    insecure: bool | None = None
    ca_file: str | None = Field(default=None, description="Path of a CA bundle on the server.")
    ca_data: SecretText = _secret("Base64 PEM of the CA; wins over caFile")


class ClusterCredential(_Source):
    """How to reach a cluster: server and credentials, or a whole kubeconfig."""

    server: str | None = None
    user: str | None = None
    password: SecretText = _secret("Password of `user`")
    bearer_token: SecretText = _secret("Bearer token")
    tls_client_config: TLSClientConfig | None = None
    kube_config: Annotated[str | FreeForm | None, CREDENTIAL] = _secret(
        "A kubeconfig, as YAML text or as an object")


class ClusterSource(_Source):
    cluster_name: str | None = Field(default=None, max_length=63, pattern=_OPTIONAL_DNS_LABEL)
    credential: ClusterCredential | None = None
    is_control_cluster: bool = False
    is_worker_cluster: bool = False
    namespace: str | None = Field(default=None, max_length=63, pattern=_OPTIONAL_DNS_LABEL,
                                  description="Workload namespace.")
    pvc: str | None = Field(default=None, max_length=253)


class GeneralItem(_Source):
    name: str = Field(min_length=1, max_length=253)
    value: SecretText = _secret("The value")


SOURCE_FIELD_BY_TYPE = {
    IntegrationType.SCM: "scm",
    IntegrationType.DOCKER_REGISTRY: "docker_registry",
    IntegrationType.SONAR_QUBE: "sonar_qube",
    IntegrationType.CLUSTER: "cluster",
    IntegrationType.GENERAL: "general",
}


class IntegrationSpec(_Source):
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

    def source_problems(self) -> list[tuple[str, str]]:
        """(field, problem) for a missing source of ``type`` and for any other source."""
        problems = []
        wanted = SOURCE_FIELD_BY_TYPE[self.type]
        for field in SOURCE_FIELD_BY_TYPE.values():
            alias = type(self).model_fields[field].alias or field
            present = getattr(self, field) is not None
            if field == wanted and not present:
                problems.append((f"spec.{alias}", f"required for type {self.type}"))
            elif field != wanted and present:
                problems.append((f"spec.{alias}", f"does not belong to type {self.type}"))
        return problems


ANNOTATION_PROVISIONING = "integration.cyclone.dev/provisioning"
"""On a Cluster integration's Secret: the provisioning controller's outcome for its opening,
as the JSON of a `ProvisioningStatus`. Only the controller writes it; the API refuses it in
a request and shows it as the answer's ``status.provisioning``."""


class ProvisioningState(StrEnum):
    PENDING = "Pending"
    """Opened; the provisioning controller has not reported on this opening yet."""
    READY = "Ready"
    """What the opening needs exists in the cluster."""
    REFUSED = "Refused"
    """The controller refused the opening (the integration's input); it stays refused
    until the integration is changed, closed or the conflict is gone."""
    FAILING = "Failing"
    """The controller could not provision (the cluster failed); it keeps retrying."""


class ProvisioningStatus(CycloneModel):
    """How an opened Cluster integration is provisioned, on every server replica."""

    state: ProvisioningState
    reason: str | None = Field(default=None, description="Conflict, Forbidden, BadRequest, …")
    message: str | None = None


class Integration(CycloneModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: IntegrationSpec

    @property
    def name(self) -> str:
        return self.metadata.name or ""


def integration_credential_values(spec: dict) -> list[str]:
    """Every string in the credential fields of a stored integration spec (and under any
    field the models do not declare)."""
    return credential_values(IntegrationSpec, spec) if isinstance(spec, dict) else []
