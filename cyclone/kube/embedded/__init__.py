"""The embedded cluster: Kubernetes object semantics over one SQLite file."""

from cyclone.kube.embedded.cluster import EmbeddedCluster
from cyclone.kube.embedded.logs import NODE_LOG_DIR_ANNOTATION

__all__ = ["NODE_LOG_DIR_ANNOTATION", "EmbeddedCluster"]
