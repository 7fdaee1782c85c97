"""`Cluster.list` with `limit` and `continue_`: pages in key order that cover every object
once, across writes between pages; tokens that are not tokens, expired ones, and ones
taken from another namespace's list. On the embedded cluster and a real API server."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
from support.clusters import REAL_CLUSTERS, cluster_params, eventually
from support.control_plane import kube_cluster, session_plane

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import BadRequest, Gone, NotFound
from cyclone.kube.protocol import Cluster

CHANGE_LOG = 64


@pytest.fixture(params=cluster_params())
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    if request.param in REAL_CLUSTERS:
        async with kube_cluster(tmp_path) as remote:
            yield remote
        return
    async with EmbeddedCluster(tmp_path / "cluster.db", change_log_size=CHANGE_LOG) as embedded:
        yield embedded


async def _namespace(cluster: Cluster) -> str:
    name = f"pg-{secrets.token_hex(4)}"
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
async def namespaces(cluster: Cluster) -> AsyncIterator[tuple[str, str]]:
    created = (await _namespace(cluster), await _namespace(cluster))
    yield created
    for name in created:
        with suppress(NotFound):
            await cluster.delete(kinds.NAMESPACE, name)


OURS = "made-by=paging-test"
"""Every ConfigMap a test makes carries it (kube-controller-manager adds one of its own
to each namespace)."""


async def _config_map(cluster: Cluster, namespace: str, name: str, **labels: str) -> None:
    await cluster.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": name, "namespace": namespace, "labels": {"made-by": "paging-test", **labels}}})


async def _pages(cluster: Cluster, namespace: str, limit: int, selector: str = OURS,
                 between=None) -> list[list[str]]:
    """The names of each page, calling `between(page_number)` after each page."""
    pages: list[list[str]] = []
    token: str | None = None
    versions = set()
    while True:
        page = await cluster.list(kinds.CONFIG_MAP, namespace, label_selector=selector,
                                  limit=limit, continue_=token)
        assert len(page.items) <= limit
        versions.add(page.resource_version)
        pages.append([obj["metadata"]["name"] for obj in page.items])
        if not page.continue_:
            break
        token = page.continue_
        if between is not None:
            await between(len(pages))
    assert len(versions) == 1, "every page reports the first page's resourceVersion"
    return pages


def _flat(pages: list[list[str]]) -> list[str]:
    return [name for page in pages for name in page]


async def test_pages_cover_every_object_once_in_name_order(cluster, namespaces):
    namespace, _ = namespaces
    names = [f"cm-{i:02d}" for i in range(23)]
    for name in reversed(names):
        await _config_map(cluster, namespace, name, tier="odd" if int(name[3:]) % 2 else "even")

    pages = await _pages(cluster, namespace, limit=5)
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert _flat(pages) == names
    odd = _flat(await _pages(cluster, namespace, limit=4, selector=f"{OURS},tier=odd"))
    assert odd == [name for name in names if int(name[3:]) % 2]
    everything = await cluster.list(kinds.CONFIG_MAP, namespace, label_selector=OURS)
    assert everything.continue_ == ""
    assert [obj["metadata"]["name"] for obj in everything.items] == names
    last = await cluster.list(kinds.CONFIG_MAP, namespace, label_selector=OURS,
                              limit=len(names) + 5)
    assert len(last.items) == len(names) and last.continue_ == ""


async def test_writes_between_pages_neither_repeat_nor_lose_an_object_that_stays(
        cluster, namespaces):
    namespace, _ = namespaces
    names = [f"cm-{i:02d}" for i in range(20)]
    for name in names:
        await _config_map(cluster, namespace, name)
    deleted = {"cm-02", "cm-11", "cm-17"}
    created = {"cm-01a", "cm-12a", "cm-19a"}

    async def write(page_number: int) -> None:
        if page_number != 1:
            return
        for name in sorted(deleted):
            await cluster.delete(kinds.CONFIG_MAP, name, namespace)
        for name in sorted(created):
            await _config_map(cluster, namespace, name)
        await cluster.patch(kinds.CONFIG_MAP, "cm-15", {"data": {"changed": "yes"}},
                            namespace)

    listed = _flat(await _pages(cluster, namespace, limit=5, between=write))
    assert listed == sorted(listed) and len(listed) == len(set(listed)), listed
    stayed = [name for name in names if name not in deleted]
    assert [name for name in listed if name in stayed] == stayed
    assert "cm-02" in listed, "it was on the first page"
    assert "cm-01a" not in listed, "created behind the pages already read"


async def test_a_bad_token_is_a_bad_request(cluster, namespaces):
    namespace, _ = namespaces
    await _config_map(cluster, namespace, "a")
    for token in ("not a token", "eyJub3QiOiJqc29uIg",
                  base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v1","rv":0,"start":"a"}')
                  .decode().rstrip("=")):
        with pytest.raises(BadRequest):
            await cluster.list(kinds.CONFIG_MAP, namespace, limit=1, continue_=token)


def _token(fields: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


async def test_a_token_of_another_namespace_lists_only_the_namespace_asked(
        cluster, namespaces):
    mine, theirs = namespaces
    for name in ("a", "b", "c"):
        await _config_map(cluster, theirs, f"a-{name}")
        await _config_map(cluster, mine, f"z-{name}")
    their_page = await cluster.list(kinds.CONFIG_MAP, theirs, label_selector=OURS, limit=1)
    assert their_page.continue_
    taken = await cluster.list(kinds.CONFIG_MAP, mine, limit=10,
                               continue_=their_page.continue_)
    assert [obj["metadata"]["namespace"] for obj in taken.items if obj["metadata"]["name"]
            .startswith("z-")] == [mine] * 3
    assert all(obj["metadata"]["namespace"] == mine for obj in taken.items)
    decoded = json.loads(base64.urlsafe_b64decode(their_page.continue_ + "=="))
    for start in (f"../{theirs}/a-a", f"/../{theirs}/", "../../", f"x/../../{theirs}/b"):
        crafted = _token({**decoded, "start": start})
        with pytest.raises(BadRequest):
            await cluster.list(kinds.CONFIG_MAP, mine, limit=10, continue_=crafted)
    before = _token({**decoded, "start": "\0"})
    listed = await cluster.list(kinds.CONFIG_MAP, mine, limit=10, continue_=before)
    assert {obj["metadata"]["namespace"] for obj in listed.items} <= {mine}


async def _compact_etcd() -> None:
    """Compact the session plane's etcd up to its current revision (as kube-apiserver
    does every five minutes)."""
    endpoint = session_plane().etcd_endpoint
    async with httpx.AsyncClient(base_url=endpoint, timeout=10) as etcd:
        ranged = await etcd.post("/v3/kv/range", json={
            "key": base64.b64encode(b"/registry/").decode()})
        revision = ranged.json()["header"]["revision"]
        compacted = await etcd.post("/v3/kv/compaction",
                                    json={"revision": revision, "physical": True})
        assert compacted.status_code == 200, compacted.text


async def test_an_expired_token_is_gone(cluster, namespaces):
    namespace, _ = namespaces
    for name in ("a", "b", "c"):
        await _config_map(cluster, namespace, name)
    first = await cluster.list(kinds.CONFIG_MAP, namespace, limit=1)
    for round_ in range(2 * CHANGE_LOG):
        await cluster.patch(kinds.CONFIG_MAP, "c", {"data": {"n": str(round_)}}, namespace)
    if isinstance(cluster, EmbeddedCluster):
        with pytest.raises(Gone):
            await cluster.list(kinds.CONFIG_MAP, namespace, limit=1, continue_=first.continue_)
        return
    await _compact_etcd()

    async def gone() -> bool:
        with pytest.raises(Gone):
            await cluster.list(kinds.CONFIG_MAP, namespace, limit=1, continue_=first.continue_)
        return True

    await eventually(gone, timeout=10)


async def test_a_token_of_negative_version_goes_on_from_the_current_state(cluster, namespaces):
    """The token kube-apiserver offers with its 410 (`rv` -1) lists on, inconsistently."""
    namespace, _ = namespaces
    for name in ("a", "b", "c"):
        await _config_map(cluster, namespace, name)
    token = _token({"v": "meta.k8s.io/v1", "rv": -1, "start": "a\0"})
    page = await cluster.list(kinds.CONFIG_MAP, namespace, label_selector=OURS, limit=5,
                              continue_=token)
    assert [obj["metadata"]["name"] for obj in page.items] == ["b", "c"]


async def test_a_selective_page_skips_what_the_selector_refuses(cluster, namespaces):
    """Few matches among many objects, and objects holding the selector's text elsewhere
    than in their labels."""
    namespace, _ = namespaces
    for i in range(40):
        await _config_map(cluster, namespace, f"cm-{i:02d}", team="red")
    for name in ("cm-05a", "cm-25a", "cm-39a"):
        await _config_map(cluster, namespace, name, team="blue")
    await cluster.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "cm-10a", "namespace": namespace, "labels": {"made-by": "paging-test"},
        "annotations": {"team": "blue"}}, "data": {"team": "blue"}})
    pages = await _pages(cluster, namespace, limit=2, selector=f"{OURS},team=blue")
    assert _flat(pages) == ["cm-05a", "cm-25a", "cm-39a"]
    assert _flat(await _pages(cluster, namespace, limit=2,
                              selector=f"{OURS},team in (blue),team!=red")) == _flat(pages)
