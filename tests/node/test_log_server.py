"""The kubelet-compatible log endpoint of the node agent, and who it answers: only a caller
with a client certificate from the CA it is given (the API server's), never anyone else."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cyclone.components import ComponentError
from cyclone.devcluster.certs import PlanePki, write_certificates
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node import HostRuntime, NodeAgent
from cyclone.node.layout import NodeLayout
from cyclone.node.log_server import LogServer, LogServerError, _tail_offset, check_client_ca
from cyclone.node_components import log_client_ca_path
from cyclone.up import UpError, UpOptions, log_client_ca
from node.helpers import (
    NODE,
    pod_manifest,
    running_agent,
    signal_volume,
    statuses,
    terminal,
    wait_for_pod,
)

needs_bwrap = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")
SECRET_LINE = b"password=hunter2\n"


@pytest.fixture
def pki(tmp_path: Path) -> PlanePki:
    """A CA with a client certificate as the API server's (CN kube-apiserver-kubelet-client)."""
    return write_certificates(tmp_path / "pki")


def client_tls(pki: PlanePki | None) -> ssl.SSLContext:
    """A caller's TLS: it skips checking the node's self-signed certificate (as the API server
    does) and presents `pki`'s client certificate, if any."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if pki is not None:
        context.load_cert_chain(pki.kubelet_client_cert, pki.kubelet_client_key)
    return context


@pytest.fixture
async def log_url(tmp_path: Path, pki: PlanePki) -> AsyncIterator[str]:
    """A log server trusting `pki`'s CA, and the URL of one container's (secret) log."""
    layout = NodeLayout(tmp_path / "node")
    layout.prepare()
    path = layout.log_path("tenant-a", "build", "main")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(SECRET_LINE)
    server = await LogServer(layout, lambda *_: False, pki.ca_cert).start(0, "127.0.0.1")
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"https://127.0.0.1:{port}/containerLogs/tenant-a/build/main"


async def test_a_caller_with_a_client_certificate_of_the_given_ca_reads_the_log(
    log_url: str, pki: PlanePki
) -> None:
    async with httpx.AsyncClient(verify=client_tls(pki), timeout=10) as client:
        response = await client.get(log_url)
    assert (response.status_code, response.content) == (200, SECRET_LINE)


async def test_a_caller_without_a_client_certificate_is_refused_at_the_tls_layer(
    log_url: str,
) -> None:
    async with httpx.AsyncClient(verify=client_tls(None), timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(log_url)


async def test_a_client_certificate_of_another_ca_is_refused(
    log_url: str, tmp_path: Path
) -> None:
    stranger = write_certificates(tmp_path / "other-pki")
    async with httpx.AsyncClient(verify=client_tls(stranger), timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(log_url)


async def test_a_plain_connection_gets_no_log_bytes(log_url: str) -> None:
    port = int(log_url.split(":")[2].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /containerLogs/tenant-a/build/main HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    received = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert b"hunter2" not in received


def test_a_node_agent_refuses_a_log_server_without_a_client_ca(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="client CA"):
        NodeAgent(cluster, node_name="n", data_dir=tmp_path, runtime=HostRuntime(),
                  log_server_port=0)


def test_a_client_ca_that_is_not_a_certificate_is_refused(tmp_path: Path, pki: PlanePki) -> None:
    (tmp_path / "junk.crt").write_text("not a certificate\n")
    with pytest.raises(LogServerError):
        check_client_ca(tmp_path / "junk.crt")
    with pytest.raises(LogServerError):
        check_client_ca(tmp_path / "absent.crt")
    check_client_ca(pki.ca_cert)


def test_cyclone_node_starts_a_log_server_only_with_both_a_port_and_a_client_ca(
    tmp_path: Path, pki: PlanePki
) -> None:
    assert log_client_ca_path(None, None) is None
    assert log_client_ca_path(10250, str(pki.ca_cert)) == pki.ca_cert.resolve()
    with pytest.raises(ComponentError, match="--log-server-port needs --log-client-ca-file"):
        log_client_ca_path(10250, None)
    with pytest.raises(ComponentError, match="only with --log-server-port"):
        log_client_ca_path(None, str(pki.ca_cert))
    with pytest.raises(ComponentError, match="--log-client-ca-file"):
        log_client_ca_path(10250, str(tmp_path / "absent.crt"))


def test_cyclone_up_takes_a_client_ca_only_for_its_node_agent_on_a_kubeconfig(
    tmp_path: Path, pki: PlanePki
) -> None:
    ca = str(pki.ca_cert)
    assert log_client_ca(UpOptions(kubeconfig="k", node_agent=True)) is None
    assert log_client_ca(UpOptions(kubeconfig="k", node_agent=True, log_client_ca_file=ca)) \
        == pki.ca_cert.resolve()
    with pytest.raises(UpError, match="only with --kubeconfig and --node-agent"):
        log_client_ca(UpOptions(log_client_ca_file=ca))
    with pytest.raises(UpError, match="client CA"):
        log_client_ca(UpOptions(kubeconfig="k", node_agent=True,
                                log_client_ca_file=str(tmp_path / "absent.crt")))


@needs_bwrap
async def test_logs_are_served_and_followed_over_https(
    cluster: EmbeddedCluster, tmp_path: Path, pki: PlanePki
) -> None:
    shared, volume, mount = signal_volume(tmp_path)
    gate = shared / "gate"
    script = "echo one; echo two; while [ ! -e /signal/gate ]; do sleep 0.05; done; echo three"
    spec = {"volumes": [volume], "containers": [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", script],
         "volumeMounts": [mount]}]}
    async with running_agent(
        cluster, tmp_path / "node", HostRuntime(), log_server_port=0, log_client_ca=pki.ca_cert
    ) as agent:
        node = await cluster.get(kinds.NODE, NODE)
        port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        assert port == agent.log_server_port and port > 0
        await cluster.create(pod_manifest("talker", spec))
        await wait_for_pod(cluster, "talker", lambda p: "running" in (
            statuses(p).get("c", {}).get("state") or {}))
        base = f"https://127.0.0.1:{port}/containerLogs/default/talker/c"
        async with httpx.AsyncClient(verify=client_tls(pki), timeout=10) as client:
            log_path = agent.layout.log_path("default", "talker", "c")
            while log_path.read_text().count("\n") < 2:
                await wait_for_pod(cluster, "talker", lambda p: True)
            now = await client.get(base, params={"follow": "false"})
            assert (now.status_code, now.text) == (200, "one\ntwo\n")
            tail = await client.get(base, params={"tailLines": "1"})
            assert tail.text == "two\n"
            async with client.stream("GET", base, params={"follow": "true"}) as followed:
                received = b""
                async for chunk in followed.aiter_bytes():
                    received += chunk
                    if received == b"one\ntwo\n":
                        gate.touch()
            assert received == b"one\ntwo\nthree\n"
            missing = await client.get(f"https://127.0.0.1:{port}/containerLogs/default/x/c")
            assert missing.status_code == 404
        pod = await wait_for_pod(cluster, "talker", terminal)
        assert pod["status"]["phase"] == "Succeeded"


@pytest.mark.parametrize(("lines", "expected"), [(0, b""), (1, b"c\n"), (2, b"b\nc\n"),
                                                 (9, b"a\nb\nc\n")])
def test_tail_offset_counts_lines_from_the_end(tmp_path: Path, lines: int, expected: bytes) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"a\nb\nc\n")
    assert path.read_bytes()[_tail_offset(path, lines):] == expected
