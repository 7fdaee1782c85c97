"""The CRDs of `deploy/crds/` on a real apiserver: they establish, and every sample manifest
of a Cyclone kind is stored without losing a field of its spec or status."""

from __future__ import annotations

import contextlib
import copy
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from support.clusters import eventually

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, NotFound
from cyclone.kube.remote import RemoteCluster

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "deploy" / "crds"
MANIFEST_DIR = REPO / "tests" / "fixtures" / "manifests"


def crd_documents() -> list[dict]:
    documents = [
        doc for path in sorted(CRD_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text()) if doc
    ]
    if documents:
        return documents
    from cyclone.api.crds import render_crds

    return render_crds()


def cyclone_samples() -> list[Path]:
    return [
        path for path in sorted(MANIFEST_DIR.glob("*.yaml"))
        if yaml.safe_load(path.read_text()).get("apiVersion") == keys.API_VERSION
    ]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


async def apply(cluster: RemoteCluster, obj: dict) -> dict:
    try:
        return await cluster.create(obj)
    except AlreadyExists:
        kind = kinds.kind_of(obj)
        current = await cluster.get(kind, obj["metadata"]["name"])
        replacement = copy.deepcopy(obj)
        replacement["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return await cluster.replace(replacement)


async def established(cluster: RemoteCluster, name: str) -> bool:
    crd = await cluster.get(kinds.CUSTOM_RESOURCE_DEFINITION, name)
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@pytest.fixture
async def crds_applied(remote_cluster: RemoteCluster) -> list[dict]:
    documents = crd_documents()
    for crd in documents:
        await apply(remote_cluster, crd)
    for crd in documents:
        await eventually(lambda n=crd["metadata"]["name"]: established(remote_cluster, n),
                         timeout=30)
    return documents


@pytest.fixture
async def namespace(remote_cluster: RemoteCluster) -> AsyncIterator[str]:
    name = f"crd-{secrets.token_hex(4)}"
    await remote_cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": name}})
    yield name
    with contextlib.suppress(NotFound):
        await remote_cluster.delete(kinds.NAMESPACE, name)


async def test_every_cyclone_kind_has_an_established_crd(crds_applied: list[dict]) -> None:
    served = {(d["spec"]["group"], d["spec"]["names"]["kind"]) for d in crds_applied}
    assert served == {(keys.GROUP, k.kind) for k in kinds.CYCLONE_KINDS}


@pytest.mark.parametrize("sample", cyclone_samples(), ids=lambda p: p.stem)
async def test_sample_manifest_round_trips_through_the_apiserver(
    remote_cluster: RemoteCluster, crds_applied: list[dict], namespace: str, sample: Path,
) -> None:
    manifest = load(sample)
    kind = kinds.kind_of(manifest)
    meta = manifest["metadata"]
    meta.pop("ownerReferences", None)
    meta["name"] = f"{meta['name']}-{secrets.token_hex(2)}"
    if kind.namespaced:
        meta["namespace"] = namespace
    status = manifest.pop("status", None)

    try:
        await remote_cluster.create(manifest)
        stored = await remote_cluster.get(kind, meta["name"], namespace)
        assert stored.get("spec") == manifest.get("spec")
        assert stored["metadata"].get("labels") == meta.get("labels")
        if status is not None:
            stored["status"] = status
            updated = await remote_cluster.replace_status(stored)
            assert updated["status"] == status
            assert (await remote_cluster.get(kind, meta["name"], namespace))["status"] == status
    finally:
        if not kind.namespaced:
            with contextlib.suppress(NotFound):
                await remote_cluster.delete(kind, meta["name"])


async def test_workflow_run_is_listed_by_label_and_its_spec_is_not_changed_by_status(
    remote_cluster: RemoteCluster, crds_applied: list[dict], namespace: str,
) -> None:
    run = load(MANIFEST_DIR / "workflowrun.yaml")
    run["metadata"].pop("ownerReferences")
    run["metadata"]["namespace"] = namespace
    run.pop("status")
    created = await remote_cluster.create(run)
    created["status"] = {"overall": {"phase": "Succeeded"}}
    created["spec"]["stopped"] = True
    updated = await remote_cluster.replace_status(created)
    assert updated["spec"]["stopped"] is False
    listed = await remote_cluster.list(
        kinds.WORKFLOW_RUN, namespace, label_selector=f"{keys.LABEL_WORKFLOW}=devops-demo-ci"
    )
    assert [r["metadata"]["name"] for r in listed.items] == [run["metadata"]["name"]]
    assert listed.items[0]["status"]["overall"]["phase"] == "Succeeded"
