"""ExecutionCluster: a cluster where stage pods run (cluster-scoped)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from cyclone.api.common import CycloneModel, FreeForm
from cyclone.api.meta import CycloneObject


class TLSClientConfig(CycloneModel):
    insecure: bool | None = None
    ca_file: str | None = None
    ca_data: str | None = Field(default=None, description="Base64 PEM; wins over caFile.")


class ClusterCredential(CycloneModel):
    """How to reach a cluster: server and credentials, or a whole kubeconfig."""

    server: str | None = None
    user: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    tls_client_config: TLSClientConfig | None = None
    kube_config: FreeForm | None = Field(default=None, description="A kubeconfig, kept whole.")


class ExecutionClusterSpec(CycloneModel):
    credential: ClusterCredential = Field(default_factory=ClusterCredential)


class ExecutionCluster(CycloneObject):
    """A cluster stage pods can run in, and how to reach it (cluster-scoped)."""

    KIND: ClassVar[str] = "ExecutionCluster"
    PLURAL: ClassVar[str] = "executionclusters"
    SHORT_NAME: ClassVar[str] = "ec"
    NAMESPACED: ClassVar[bool] = False

    spec: ExecutionClusterSpec = Field(default_factory=ExecutionClusterSpec)
    status: FreeForm | None = None
