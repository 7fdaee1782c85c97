"""RemoteCluster against a real kube-apiserver: connection sources, errors, lists, watches."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clusters import eventually

from cyclone.devcluster import ControlPlane
from cyclone.devcluster.plane import free_port
from cyclone.kube import kinds
from cyclone.kube.errors import (
    BadRequest,
    Gone,
    Invalid,
    NotFound,
    Unauthorized,
    Unavailable,
)
from cyclone.kube.kinds import Kind
from cyclone.kube.remote import RemoteCluster

pytestmark = pytest.mark.k8s


def config_map(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


@pytest.fixture
async def namespace(remote_cluster: RemoteCluster) -> AsyncIterator[str]:
    name = f"rc-{secrets.token_hex(4)}"
    await remote_cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": name}})
    # The controller-manager publishes this ConfigMap into every new namespace; waiting
    # for it keeps it out of the watches below.
    await eventually(lambda: remote_cluster.get(kinds.CONFIG_MAP, "kube-root-ca.crt", name),
                     timeout=30)
    yield name
    with contextlib.suppress(NotFound):
        await remote_cluster.delete(kinds.NAMESPACE, name)


def credential_of(plane: ControlPlane, **overrides: object) -> dict:
    credential: dict = {
        "server": plane.server,
        "bearerToken": plane.token,
        "tlsClientConfig": {"caData": base64.b64encode(plane.ca_file.read_bytes()).decode()},
    }
    credential.update(overrides)
    return credential


async def test_credential_with_server_token_and_ca_reaches_the_plane(
    control_plane: ControlPlane,
) -> None:
    async with RemoteCluster.from_credential(credential_of(control_plane), name="w") as cluster:
        default = await cluster.get(kinds.NAMESPACE, "default")
    assert default["metadata"]["name"] == "default"


async def test_credential_with_kubeconfig_document_reaches_the_plane(
    control_plane: ControlPlane,
) -> None:
    credential = {"kubeConfig": control_plane.kubeconfig.read_text()}
    async with RemoteCluster.from_credential(credential) as cluster:
        listed = await cluster.list(kinds.NAMESPACE)
    assert "kube-system" in {ns["metadata"]["name"] for ns in listed.items}


async def test_insecure_credential_skips_server_verification(control_plane: ControlPlane) -> None:
    credential = credential_of(control_plane, tlsClientConfig={"insecure": True})
    async with RemoteCluster.from_credential(credential) as cluster:
        assert (await cluster.get(kinds.NAMESPACE, "default"))["kind"] == "Namespace"


async def test_wrong_token_is_unauthorized(control_plane: ControlPlane) -> None:
    credential = credential_of(control_plane, bearerToken="not-the-token")
    async with RemoteCluster.from_credential(credential) as cluster:
        with pytest.raises(Unauthorized):
            await cluster.get(kinds.NAMESPACE, "default")


async def test_unknown_ca_makes_the_cluster_unavailable(control_plane: ControlPlane) -> None:
    credential = credential_of(control_plane, tlsClientConfig={})
    async with RemoteCluster.from_credential(credential) as cluster:
        with pytest.raises(Unavailable):
            await cluster.get(kinds.NAMESPACE, "default")


async def test_nothing_listening_is_unavailable() -> None:
    credential = {"server": f"https://127.0.0.1:{free_port()}", "bearerToken": "x",
                  "tlsClientConfig": {"insecure": True}}
    async with RemoteCluster.from_credential(credential, timeout=2) as cluster:
        with pytest.raises(Unavailable):
            await cluster.list(kinds.POD)
        with pytest.raises(Unavailable):
            async for _ in cluster.watch(kinds.POD):
                pass


async def test_list_follows_continue_tokens_across_pages(
    remote_cluster: RemoteCluster, namespace: str,
) -> None:
    for index in range(5):
        await remote_cluster.create(config_map(f"cm-{index}"), namespace=namespace)
    remote_cluster.list_page_size = 2
    listed = await remote_cluster.list(kinds.CONFIG_MAP, namespace, label_selector=None)
    names = sorted(i["metadata"]["name"] for i in listed.items if i["metadata"]["name"] != (
        "kube-root-ca.crt"))
    assert names == [f"cm-{i}" for i in range(5)]
    assert all(item["kind"] == "ConfigMap" and item["apiVersion"] == "v1"
               for item in listed.items)
    assert int(listed.resource_version) > 0


async def test_watch_resumes_after_a_resource_version(
    remote_cluster: RemoteCluster, namespace: str,
) -> None:
    first = await remote_cluster.create(config_map("first"), namespace=namespace)
    await remote_cluster.create(config_map("second"), namespace=namespace)
    seen: list[tuple[str, str]] = []
    async for event in remote_cluster.watch(
        kinds.CONFIG_MAP, namespace, resource_version=first["metadata"]["resourceVersion"],
        timeout_seconds=1,
    ):
        if event.type != "BOOKMARK":
            seen.append((event.type, event.object["metadata"]["name"]))
    assert seen == [("ADDED", "second")]


async def test_watch_from_before_the_watch_cache_window_is_gone(
    remote_cluster: RemoteCluster, namespace: str,
) -> None:
    """The apiserver's cache of a freshly established custom resource starts at the version
    of its first list, so any older version is answered with 410 Expired."""
    suffix = secrets.token_hex(3)
    group = f"g{suffix}.test.cyclone.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }
    widget_kind = Kind(f"{group}/v1", "Widget", "widgets", True, False)
    before = await remote_cluster.create(config_map("before"), namespace=namespace)
    await remote_cluster.create(crd)
    try:
        await eventually(lambda: remote_cluster.list(widget_kind, namespace), timeout=30)
        with pytest.raises(Gone):
            async for _ in remote_cluster.watch(
                widget_kind, namespace, resource_version=before["metadata"]["resourceVersion"],
                timeout_seconds=5,
            ):
                pass
    finally:
        await remote_cluster.delete(kinds.CUSTOM_RESOURCE_DEFINITION, crd["metadata"]["name"])


async def test_watch_without_version_starts_with_current_objects(
    remote_cluster: RemoteCluster, namespace: str,
) -> None:
    await remote_cluster.create(config_map("present"), namespace=namespace)
    names = set()
    async for event in remote_cluster.watch(kinds.CONFIG_MAP, namespace, timeout_seconds=1):
        assert event.type in ("ADDED", "BOOKMARK")
        names.add(event.object["metadata"].get("name"))
    assert "present" in names


async def test_watch_streams_changes_as_they_happen(
    remote_cluster: RemoteCluster, namespace: str,
) -> None:
    listed = await remote_cluster.list(kinds.CONFIG_MAP, namespace)
    events: list[tuple[str, str]] = []

    async def consume() -> None:
        async for event in remote_cluster.watch(
            kinds.CONFIG_MAP, namespace, resource_version=listed.resource_version,
            field_selector="metadata.name=live", timeout_seconds=30,
        ):
            events.append((event.type, event.object["metadata"]["name"]))
            if event.type == "DELETED":
                return

    async with asyncio.TaskGroup() as group:
        task = group.create_task(consume())
        await remote_cluster.create(config_map("live"), namespace=namespace)
        await eventually(lambda: events)
        await remote_cluster.delete(kinds.CONFIG_MAP, "live", namespace)
        await asyncio.wait_for(task, 10)
    assert events == [("ADDED", "live"), ("DELETED", "live")]


async def test_log_of_a_pod_not_yet_on_a_node_is_empty(
    remote_cluster: RemoteCluster, namespace: str,
) -> None:
    await eventually(lambda: remote_cluster.get(kinds.SERVICE_ACCOUNT, "default", namespace))
    await remote_cluster.create({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "waiting"},
        "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "x"}]},
    }, namespace=namespace)
    chunks = [chunk async for chunk in remote_cluster.pod_logs("waiting", namespace)]
    assert chunks == []
    with pytest.raises(BadRequest):
        async for _ in remote_cluster.pod_logs("waiting", namespace, container="other"):
            pass


async def test_every_request_takes_a_rate_limit_token(control_plane: ControlPlane) -> None:
    async with RemoteCluster.from_kubeconfig(control_plane.kubeconfig, qps=0.001,
                                             burst=50) as cluster:
        for _ in range(3):
            await cluster.get(kinds.NAMESPACE, "default")
        async for _ in cluster.watch(kinds.NAMESPACE, timeout_seconds=1):
            pass
        # 4 tokens taken; the 47th reservation from here is the first that must wait.
        delays = [cluster.rate_limiter.reserve() for _ in range(47)]
    assert delays[:46] == [0.0] * 46
    assert delays[46] > 0


async def test_in_cluster_config_uses_the_service_account_files_and_service_env(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(control_plane.token)
    (account / "namespace").write_text("kube-system")
    (account / "ca.crt").write_bytes(control_plane.ca_file.read_bytes())
    host, port = control_plane.server.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    async with RemoteCluster.in_cluster(account) as cluster:
        assert cluster.namespace == "kube-system"
        listed = await cluster.list(kinds.CONFIG_MAP)
    assert any(cm["metadata"]["namespace"] == "kube-system" for cm in listed.items)


def test_in_cluster_without_a_service_account_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="in-cluster"):
        RemoteCluster.in_cluster(tmp_path / "absent")
