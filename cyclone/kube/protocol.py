"""The one door to a cluster: an async protocol over plain dict objects.

Objects are Kubernetes JSON as dicts (`apiVersion`, `kind`, `metadata`, `spec`, `status`).
Every failure is one of the typed errors of `cyclone.kube.errors`. Both the embedded store
and a real API server implement this protocol, and the contract tests hold them to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from cyclone.kube.kinds import Kind

PatchType = Literal["merge", "json", "strategic"]
EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]


@dataclass
class WatchEvent:
    type: EventType
    object: dict


@dataclass
class ObjectList:
    """A list answer. `continue_` is the token of the next page when the list was asked
    with a `limit` and more objects may follow; empty on the last page (and unpaged)."""

    items: list[dict]
    resource_version: str
    extra: dict = field(default_factory=dict)
    continue_: str = ""


@runtime_checkable
class Cluster(Protocol):
    """What a controller, the server or the node agent may ask of a cluster.

    - `namespace` is ignored for cluster-scoped kinds and, for `list`/`watch`, None means
      all namespaces.
    - `label_selector` uses the Kubernetes syntax (`a=b,c!=d,e in (f,g),!h,i`);
      `field_selector` supports `metadata.name`, `metadata.namespace` (and `spec.nodeName`
      for pods) with `=`/`==`/`!=`.
    - `list` with a `limit` answers one page in key order (namespace, then name) and the
      token of the next page in `ObjectList.continue_`; passing that token as `continue_`
      (with the same kind, namespace and selectors) answers the page after it. Every page
      reports the resourceVersion of the first. A token too old to continue raises `Gone`,
      a token that is not one raises `BadRequest`. Without a limit, `list` answers
      everything (a `RemoteCluster` pages underneath).
    - `replace` and `replace_status` are optimistic: a `metadata.resourceVersion` that is not
      the stored one raises `Conflict`. Without resourceVersion the write is unconditional.
    - `watch` yields events after `resource_version` (all current objects as ADDED first
      when it is None) and raises `Gone` when that version has been compacted away. The
      iterator ends when the server closes the stream; callers re-watch from the last
      resourceVersion they saw.
    - Objects of watch events and of write results are read-only: the embedded store
      shares one object per change between itself and every watcher (and makes them
      raise on change under `CYCLONE_READ_ONLY_OBJECTS=1`). Change a `copy.deepcopy`;
      `get` and `list` answer private copies.
    """

    name: str

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict: ...

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> ObjectList: ...

    async def create(self, obj: dict, *, namespace: str | None = None) -> dict: ...

    async def replace(self, obj: dict) -> dict: ...

    async def replace_status(self, obj: dict) -> dict: ...

    async def patch(
        self,
        kind: Kind,
        name: str,
        patch: dict | list,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: Literal["status"] | None = None,
        resource_version: str | None = None,
    ) -> dict: ...

    async def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: Literal["Background", "Foreground", "Orphan"] | None = None,
    ) -> dict | None:
        """Delete an object; returns it when it lingers (finalizers), else None."""
        ...

    def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]: ...

    async def bind_pod(self, name: str, namespace: str, node_name: str) -> None:
        """Assign a pending pod to a node (the `pods/binding` subresource)."""
        ...

    def pod_logs(
        self,
        name: str,
        namespace: str,
        *,
        container: str | None = None,
        follow: bool = False,
        since_bytes: int = 0,
    ) -> AsyncIterator[bytes]:
        """A container's log as chunks of bytes; with follow, until the container ends."""
        ...

    async def close(self) -> None: ...
