"""The engine's SCM API calls (commit statuses, hooks) refuse a local server unless the
tenant allows local addresses."""

from __future__ import annotations

import base64
import json

from cyclone.api import keys
from cyclone.engine.controllers.scm_api import (
    ScmAccess,
    create_repo_hook,
    post_commit_status,
    read_scm_access,
)
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster

from .harness import NAMESPACE, allow_local_addresses
from .receiver import http_receiver


async def test_a_local_scm_server_is_refused_by_default():
    async with http_receiver() as receiver:
        access = ScmAccess(provider="GitHub", server=receiver.url, token="t")
        status = await post_commit_status(access, "org/app", "abc", "success", context="c",
                                          target_url="http://x", description="d")
        hook = await create_repo_hook(access, "org/app", "http://x/hook", "s")
        metadata = await post_commit_status(
            ScmAccess(provider="GitLab", server="http://169.254.169.254", token="t"),
            "org/app", "abc", "success", context="c", target_url="u", description="d")
        assert receiver.bodies == []
    for outcome in (status, hook, metadata):
        assert not outcome.ok
        assert "refused" in outcome.message and "allowLocalAddresses" in outcome.message


async def test_the_tenant_setting_reaches_the_scm_access(tmp_path):
    async with EmbeddedCluster(tmp_path / "c.db") as cluster:
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": NAMESPACE}})
        spec = {"type": "SCM", "scm": {"type": "GitHub", "server": "http://127.0.0.1:1"}}
        await cluster.create({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "gh", "namespace": NAMESPACE,
                         "labels": {keys.LABEL_INTEGRATION_TYPE: "SCM"}},
            "data": {"integration": base64.b64encode(json.dumps(spec).encode()).decode()},
        }, namespace=NAMESPACE)
        before = await read_scm_access(cluster, NAMESPACE, "gh")
        await allow_local_addresses(cluster)
        after = await read_scm_access(cluster, NAMESPACE, "gh")
        assert (await cluster.get(kinds.NAMESPACE, NAMESPACE))["metadata"]["annotations"]
    assert before is not None and before.allow_local is False
    assert after is not None and after.allow_local is True
