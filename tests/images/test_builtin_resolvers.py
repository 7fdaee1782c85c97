"""A server started over built-in resource types of an earlier release moves those still
naming that release's default resolver to this version's tagged image, and keeps an image
an administrator chose. On the embedded cluster and a real API server."""

from __future__ import annotations

from pathlib import Path

import pytest
from server.helpers import ADMIN_TOKEN
from support.clusters import CLUSTER_FACTORIES, REAL_CLUSTERS, cluster_params

from cyclone.api import keys
from cyclone.engine.core.images import DEFAULT_RESOLVER_IMAGES, replaces_default_resolver
from cyclone.kube import kinds
from cyclone.server import create_app

MIRROR = "mirror.example/team/svn:7"


async def start_server(cluster, data: Path) -> None:
    app = create_app(cluster=cluster, data_dir=data, admin_token=ADMIN_TOKEN,
                     server_url="http://cyclone.test:7099")
    async with app.router.lifespan_context(app):
        pass


async def set_resolver(cluster, name: str, image: str) -> None:
    stored = await cluster.get(kinds.RESOURCE, name, keys.SYSTEM_NAMESPACE)
    stored["spec"]["resolver"] = image
    await cluster.replace(stored)


async def resolver_of(cluster, name: str) -> str:
    return (await cluster.get(kinds.RESOURCE, name, keys.SYSTEM_NAMESPACE))["spec"]["resolver"]


@pytest.mark.parametrize("backend", cluster_params())
async def test_a_restart_moves_earlier_default_resolvers_and_keeps_chosen_ones(
        backend: str, tmp_path: Path) -> None:
    async with CLUSTER_FACTORIES[backend](tmp_path) as cluster:
        if backend in REAL_CLUSTERS:
            from support.kube_engine import install_crds

            await install_crds(cluster)  # type: ignore[arg-type]
        await start_server(cluster, tmp_path / "data")
        try:
            await set_resolver(cluster, "git", "cyclone/resolver-git")
            await set_resolver(cluster, "http", "cyclone/resolver-http:0.0.9")
            await set_resolver(cluster, "svn", MIRROR)
            await start_server(cluster, tmp_path / "data")
            assert await resolver_of(cluster, "git") == DEFAULT_RESOLVER_IMAGES["Git"]
            assert await resolver_of(cluster, "http") == DEFAULT_RESOLVER_IMAGES["Http"]
            assert await resolver_of(cluster, "svn") == MIRROR
            assert await resolver_of(cluster, "image") == DEFAULT_RESOLVER_IMAGES["Image"]
        finally:
            await set_resolver(cluster, "svn", DEFAULT_RESOLVER_IMAGES["Svn"])


def test_only_the_untagged_or_otherwise_tagged_default_is_replaced() -> None:
    default = "cyclone/resolver-git:0.1.0"
    assert replaces_default_resolver("cyclone/resolver-git", default)
    assert replaces_default_resolver("cyclone/resolver-git:0.0.9", default)
    for kept in (default, None, "", "mirror.example/cyclone/resolver-git",
                 "cyclone/resolver-git@sha256:abc", "cyclone/resolver-gitlab:1"):
        assert not replaces_default_resolver(kept, default), kept
