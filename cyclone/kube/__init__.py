"""The one door to a cluster: protocol, typed errors, informers and both implementations."""

from cyclone.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Unavailable,
)
from cyclone.kube.protocol import Cluster, ObjectList, WatchEvent

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Cluster",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "ObjectList",
    "Unavailable",
    "WatchEvent",
]
