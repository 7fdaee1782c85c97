"""The kubelet-compatible log endpoint of the node agent."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node import HostRuntime
from cyclone.node.log_server import _tail_offset
from node.helpers import (
    NODE,
    pod_manifest,
    running_agent,
    signal_volume,
    statuses,
    terminal,
    wait_for_pod,
)

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")


async def test_logs_are_served_and_followed_over_https(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    shared, volume, mount = signal_volume(tmp_path)
    gate = shared / "gate"
    script = "echo one; echo two; while [ ! -e /signal/gate ]; do sleep 0.05; done; echo three"
    spec = {"volumes": [volume], "containers": [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", script],
         "volumeMounts": [mount]}]}
    async with running_agent(
        cluster, tmp_path / "node", HostRuntime(), log_server_port=0
    ) as agent:
        node = await cluster.get(kinds.NODE, NODE)
        port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        assert port == agent.log_server_port and port > 0
        await cluster.create(pod_manifest("talker", spec))
        await wait_for_pod(cluster, "talker", lambda p: "running" in (
            statuses(p).get("c", {}).get("state") or {}))
        base = f"https://127.0.0.1:{port}/containerLogs/default/talker/c"
        async with httpx.AsyncClient(verify=False, timeout=10) as client:
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
