"""Everything the engine and the server wrote in the flows of `support.written_objects`,
written again to a real kube-apiserver with the shipped CRDs, comes back equal: the schema
the apiserver prunes by and the fields Cyclone writes agree."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest
from support.kube_engine import install_crds
from support.written_objects import written_objects

from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.remote import RemoteCluster

pytestmark = pytest.mark.k8s

KEPT_METADATA = ("labels", "annotations")


@pytest.fixture
async def namespace(remote_cluster: RemoteCluster) -> AsyncIterator[str]:
    name = f"written-{secrets.token_hex(4)}"
    await remote_cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": name}})
    yield name
    with contextlib.suppress(NotFound):
        await remote_cluster.delete(kinds.NAMESPACE, name)


def _without_status(obj: dict, name: str, namespace: str | None) -> dict:
    meta = {key: obj["metadata"][key] for key in KEPT_METADATA if key in obj["metadata"]}
    body = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "metadata": {**meta, "name": name}}
    if namespace:
        body["metadata"]["namespace"] = namespace
    if "spec" in obj:
        body["spec"] = obj["spec"]
    return body


def _changed(written: object, stored: object, path: str) -> list[str]:
    """Paths under which `stored` differs from `written` (a pruned field, a changed value)."""
    if isinstance(written, dict) and isinstance(stored, dict):
        return [changed for key in written.keys() | stored.keys()
                for changed in _changed(written.get(key), stored.get(key), f"{path}.{key}")]
    if isinstance(written, list) and isinstance(stored, list) and len(written) == len(stored):
        return [changed for index, (one, other) in enumerate(zip(written, stored, strict=True))
                for changed in _changed(one, other, f"{path}[{index}]")]
    return [] if written == stored else [path]


def _differences(written: dict, stored: dict) -> list[str]:
    meta = {key: written["metadata"].get(key) for key in KEPT_METADATA}
    stored_meta = {key: stored["metadata"].get(key) for key in KEPT_METADATA}
    parts = ("spec", "status") if "status" in written else ("spec",)
    return [*_changed(meta, stored_meta, "metadata"),
            *(changed for part in parts
              for changed in _changed(written.get(part), stored.get(part), part))]


async def test_every_object_cyclone_writes_is_stored_by_kube_apiserver_as_written(
        remote_cluster: RemoteCluster, namespace: str,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    written = written_objects(tmp_path_factory.mktemp("written"))
    await install_crds(remote_cluster)
    suffix = secrets.token_hex(3)
    stored: dict[tuple[str, str], dict] = {}
    lost: set[str] = set()
    try:
        for obj in written:
            kind = kinds.kind_of(obj)
            where = namespace if kind.namespaced else None
            name = obj["metadata"]["name"] if where else f"{obj['metadata']['name']}-{suffix}"
            body = _without_status(obj, name, where)
            current = stored.get((obj["kind"], name))
            if current is None:
                current = await remote_cluster.create(body)
            elif _differences(body, current):
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                current = await remote_cluster.replace(body)
            if "status" in obj:
                current = await remote_cluster.replace_status({**current, "status": obj["status"]})
            stored[(obj["kind"], name)] = current = await remote_cluster.get(kind, name, where)
            lost |= {f"{obj['kind']}.{path}" for path in _differences(obj, current)}
    finally:
        for kind_name, name in stored:
            if kind_name == "ExecutionCluster":
                with contextlib.suppress(NotFound):
                    await remote_cluster.delete(kinds.EXECUTION_CLUSTER, name)
    assert len(stored) >= 10
    assert sorted(lost) == [], "kube-apiserver did not store these fields as written"
