"""RemoteCluster pieces that need no API server: configuration, paths, patches, throttling."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx2
import pytest
import yaml

from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, Invalid, NotFound, TooManyRequests
from cyclone.kube.remote import RemoteCluster
from cyclone.kube.remote_config import config_from_credential, config_from_kubeconfig
from cyclone.kube.remote_ratelimit import TokenBucket
from cyclone.kube.remote_rest import resource_path, with_resource_version

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_core_and_group_paths() -> None:
    assert resource_path(kinds.POD, "ns", "p", "binding") == "/api/v1/namespaces/ns/pods/p/binding"
    assert resource_path(kinds.POD) == "/api/v1/pods"
    assert resource_path(kinds.NODE, "ignored", "n1") == "/api/v1/nodes/n1"
    assert (resource_path(kinds.WORKFLOW_RUN, "cyclone-system", "r", "status")
            == "/apis/cyclone.dev/v1alpha1/namespaces/cyclone-system/workflowruns/r/status")
    assert (resource_path(kinds.EXECUTION_CLUSTER, None, "c")
            == "/apis/cyclone.dev/v1alpha1/executionclusters/c")
    assert resource_path(kinds.LEASE, "kube-system") == (
        "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases")


def test_merge_patch_made_conditional_on_resource_version() -> None:
    patched = with_resource_version({"metadata": {"labels": {"a": "b"}}}, "merge", "7")
    assert patched == {"metadata": {"labels": {"a": "b"}, "resourceVersion": "7"}}


def test_json_patch_made_conditional_by_replacing_resource_version_first() -> None:
    ops = [{"op": "add", "path": "/data/x", "value": "1"}]
    patched = with_resource_version(ops, "json", "9")
    assert patched[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "9"}
    assert patched[1:] == ops


def test_json_patch_must_be_a_list() -> None:
    with pytest.raises(Invalid):
        with_resource_version({"a": 1}, "json", "1")


def test_credential_with_server_token_and_pem_ca() -> None:
    config = config_from_credential({
        "server": "https://10.0.0.1:6443", "bearerToken": "t0k",
        "tlsClientConfig": {"caData": PEM},
    })
    assert config.cluster.server == "https://10.0.0.1:6443"
    assert config.user.token == "t0k"
    assert base64.b64decode(config.cluster.certificate_auth_data).decode() == PEM


def test_credential_with_base64_ca_insecure_and_basic_auth() -> None:
    encoded = base64.b64encode(PEM.encode()).decode()
    config = config_from_credential({
        "server": "https://k:6443", "user": "u", "password": "p",
        "tlsClientConfig": {"caData": encoded, "insecure": True},
    })
    assert config.cluster.certificate_auth_data == encoded
    assert config.cluster.insecure is True
    assert (config.user.username, config.user.password) == ("u", "p")


def test_credential_with_kubeconfig_document() -> None:
    document = {
        "apiVersion": "v1", "kind": "Config", "current-context": "w",
        "clusters": [{"name": "w", "cluster": {"server": "https://worker:6443"}}],
        "users": [{"name": "w", "user": {"token": "abc"}}],
        "contexts": [{"name": "w", "context": {"cluster": "w", "user": "w"}}],
    }
    for given in (document, yaml.safe_dump(document)):
        config = config_from_credential({"kubeConfig": given})
        assert config.cluster.server == "https://worker:6443"
        assert config.user.token == "abc"
        assert config.cluster.insecure is False


@pytest.mark.parametrize("credential", [
    {},
    {"bearerToken": "x"},
    {"kubeConfig": "- not a mapping"},
    {"server": "https://k", "tlsClientConfig": {"caData": "%%% not base64"}},
])
def test_unusable_credentials_are_invalid(credential: dict) -> None:
    with pytest.raises(Invalid):
        config_from_credential(credential)


def test_missing_kubeconfig_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(Invalid):
        config_from_kubeconfig(tmp_path / "absent")


def test_a_kubeconfig_that_is_not_yaml_is_named_by_its_position_never_its_text(
        tmp_path: Path) -> None:
    broken = "users:\n- name: u\n  user: {token: SEKRET-TOKEN-123\n"
    with pytest.raises(Invalid) as from_credential:
        config_from_credential({"kubeConfig": broken})
    (tmp_path / "config").write_text(broken)
    with pytest.raises(Invalid) as from_file:
        config_from_kubeconfig(tmp_path / "config")
    assert str(from_credential.value) == "kubeConfig: not valid YAML at line 4, column 1"
    assert str(from_file.value).endswith(": not valid YAML at line 4, column 1")
    assert "SEKRET" not in str(from_file.value)


async def test_cluster_named_after_context_unless_named(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    }))
    async with RemoteCluster.from_kubeconfig(path) as cluster:
        assert cluster.name == "ctx"
    async with RemoteCluster.from_kubeconfig(path, name="worker-1") as cluster:
        assert cluster.name == "worker-1"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_token_bucket_allows_a_burst_then_paces_at_qps() -> None:
    time = FakeTime()
    bucket = TokenBucket(10, 3, clock=time.clock, sleep=time.sleep)
    for _ in range(3):
        await bucket.acquire()
    assert time.slept == []
    await bucket.acquire()
    await bucket.acquire()
    assert time.slept == pytest.approx([0.1, 0.2])


async def test_token_bucket_refills_over_time_up_to_burst() -> None:
    time = FakeTime()
    bucket = TokenBucket(2, 2, clock=time.clock, sleep=time.sleep)
    await bucket.acquire()
    await bucket.acquire()
    time.now += 10
    for _ in range(2):
        await bucket.acquire()
    assert time.slept == []
    await bucket.acquire()
    assert time.slept == pytest.approx([0.5])


async def test_token_bucket_disabled_with_non_positive_qps() -> None:
    time = FakeTime()
    bucket = TokenBucket(0, 1, clock=time.clock, sleep=time.sleep)
    for _ in range(100):
        await bucket.acquire()
    assert time.slept == []


def scripted_cluster(answers: list[httpx2.Response], seen: list[str],
                     **options: object) -> RemoteCluster:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(f"{request.method} {request.url.path}")
        return answers.pop(0)

    config = config_from_credential({"server": "https://k8s.test", "bearerToken": "t"})
    return RemoteCluster(config, transport=httpx2.MockTransport(handler), **options)  # type: ignore[arg-type]


def status(code: int, reason: str, **headers: str) -> httpx2.Response:
    return httpx2.Response(code, headers=headers, json={
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
        "code": code, "message": reason})


async def test_too_many_requests_with_retry_after_is_retried() -> None:
    seen: list[str] = []
    answers = [status(429, "TooManyRequests", **{"Retry-After": "0"}),
               status(500, "ServerTimeout", **{"Retry-After": "0"}),
               httpx2.Response(200, json={"kind": "Namespace", "apiVersion": "v1",
                                          "metadata": {"name": "default"}})]
    async with scripted_cluster(answers, seen) as cluster:
        namespace = await cluster.get(kinds.NAMESPACE, "default")
    assert namespace["metadata"]["name"] == "default"
    assert seen == ["GET /api/v1/namespaces/default"] * 3


async def test_retries_end_with_the_typed_error() -> None:
    seen: list[str] = []
    answers = [status(429, "TooManyRequests", **{"Retry-After": "0"}) for _ in range(3)]
    async with scripted_cluster(answers, seen, max_retries=2) as cluster:
        with pytest.raises(TooManyRequests):
            await cluster.get(kinds.NAMESPACE, "default")
    assert len(seen) == 3


async def test_errors_without_retry_after_are_not_retried() -> None:
    seen: list[str] = []
    async with scripted_cluster([status(409, "AlreadyExists")], seen) as cluster:
        with pytest.raises(AlreadyExists):
            await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "x", "namespace": "ns"}})
    assert seen == ["POST /api/v1/namespaces/ns/configmaps"]


async def test_non_status_error_bodies_still_map_by_code() -> None:
    seen: list[str] = []
    answer = httpx2.Response(404, text="404 page not found")
    async with scripted_cluster([answer], seen) as cluster:
        with pytest.raises(NotFound, match="404 page not found"):
            await cluster.get(kinds.WORKFLOW, "w", "ns")
