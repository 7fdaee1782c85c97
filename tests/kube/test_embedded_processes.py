"""Several processes on one file, and durability across SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster

WRITER = """
import asyncio, sys
from pathlib import Path
from cyclone.kube.embedded import EmbeddedCluster

async def main(path, prefix, count):
    async with EmbeddedCluster(Path(path)) as cluster:
        for index in range(count):
            name = f"{prefix}-{index}"
            await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": name, "namespace": "default"}})
            print(name, flush=True)
        await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def _start_writer(path: Path, prefix: str, count: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(path), prefix, str(count),
        stdout=asyncio.subprocess.PIPE,
    )


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    writer = await _start_writer(path, "durable", 100000)
    acknowledged: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(acknowledged) < 200:
                line = await writer.stdout.readline()
                assert line, "writer exited early"
                acknowledged.append(line.decode().strip())
    finally:
        writer.send_signal(signal.SIGKILL)
        await writer.wait()
    async with EmbeddedCluster(path) as reopened:
        stored = {o["metadata"]["name"]
                  for o in (await reopened.list(kinds.CONFIG_MAP, "default")).items}
    assert set(acknowledged) <= stored


async def test_watch_sees_writes_of_another_process(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with EmbeddedCluster(path) as cluster:
        start = (await cluster.list(kinds.CONFIG_MAP, "default")).resource_version
        await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "local", "namespace": "default"}})
        writer = await _start_writer(path, "remote", 3)
        seen: list[tuple[str, int]] = []
        try:
            async with asyncio.timeout(30):
                async for event in cluster.watch(kinds.CONFIG_MAP, "default",
                                                 resource_version=start):
                    seen.append((event.object["metadata"]["name"],
                                 int(event.object["metadata"]["resourceVersion"])))
                    if len(seen) == 4:
                        break
        finally:
            writer.kill()
            await writer.wait()
    assert [name for name, _ in seen] == ["local", "remote-0", "remote-1", "remote-2"]
    versions = [rv for _, rv in seen]
    assert versions == sorted(versions) and len(set(versions)) == 4
