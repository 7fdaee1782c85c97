"""The engine alone in a process, on an embedded cluster file or a kubeconfig: killed and
restarted by the crash test. Usage: python engine_process.py <cluster.db | kubeconfig>"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from cyclone.engine.config import EngineConfig
from cyclone.engine.manager import Engine
from cyclone.kube.embedded import EmbeddedCluster


async def main(path: Path) -> None:
    if path.suffix == ".db":
        cluster = EmbeddedCluster(path)
        await cluster.start()
    else:
        from cyclone.kube.remote import RemoteCluster

        cluster = RemoteCluster.from_kubeconfig(str(path))
    engine = Engine(cluster, EngineConfig(gc_enabled=False, watch_pod_events=False))
    async with asyncio.TaskGroup() as group:
        group.create_task(engine.run())
        await engine.ready.wait()
        print("ready", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
