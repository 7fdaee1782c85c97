"""A tenant's dry run on a server that opens the control cluster for new tenants: the answer
is the tenant with the server's defaults, and nothing is stored, opened or attempted."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cyclone.api import keys
from cyclone.engine.core.serversettings import ServerSettings, TenantDefaults
from cyclone.kube import errors, kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app

from .helpers import ADMIN_TOKEN, make_client

QUOTA = {"limits.cpu": "2", "limits.memory": "2Gi"}


@pytest.fixture
async def opening_admin(cluster: EmbeddedCluster, tmp_path: Path) -> AsyncIterator:
    application = create_app(
        cluster=cluster, data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN,
        server_settings=ServerSettings(open_control_cluster=True, tenant_defaults=TenantDefaults(
            pvc_size="2Gi", quota=QUOTA)))
    async with application.router.lifespan_context(application), \
            make_client(application, ADMIN_TOKEN) as client:
        yield client


async def test_a_tenants_dry_run_shows_the_defaults_and_opens_nothing(
        opening_admin, cluster, caplog):
    caplog.set_level(logging.WARNING, logger="cyclone.server.tenants")
    answer = await opening_admin.post("/tenants", params={"dryrun": "true"},
                                      json={"metadata": {"name": "dry"}})
    assert answer.status_code == 201, answer.text
    assert answer.json()["spec"]["persistentVolumeClaim"]["size"] == "2Gi"
    assert answer.json()["spec"]["resourceQuota"] == QUOTA
    with pytest.raises(errors.NotFound):
        await cluster.get(kinds.NAMESPACE, keys.tenant_namespace("dry"))
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    created = await opening_admin.post("/tenants", json={"metadata": {"name": "real"}})
    assert created.status_code == 201, created.text
    await cluster.get(kinds.SECRET, keys.CONTROL_CLUSTER_NAME, keys.tenant_namespace("real"))
