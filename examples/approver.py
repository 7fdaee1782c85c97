"""The outside system of delegation.yaml: approves every delegation it receives.

    python examples/approver.py [--port 8099] [--data-dir ./.cyclone] [--approver NAME]

It listens on 127.0.0.1 for the engine's POST ``{stage, workflow, workflowrun, namespace,
callbackURL, token}`` and reports success with the output ``approver``. With the REST
server running it PUTs the result to ``callbackURL``; with ``--data-dir`` it reports
straight into the embedded cluster of `cyclone up` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import httpx

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server.delegation import report_delegation_result


async def report(request: dict, args: argparse.Namespace) -> None:
    outputs = {"approver": args.approver}
    if args.data_dir is not None:
        cluster = EmbeddedCluster(args.data_dir / "cluster.db")
        await cluster.start()
        try:
            await report_delegation_result(
                cluster, request["namespace"], request["workflowrun"], request["stage"],
                request["token"], True, f"approved by {args.approver}", outputs,
            )
        finally:
            await cluster.close()
        return
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.put(request["callbackURL"], json={
            "phase": "Succeeded", "message": f"approved by {args.approver}",
            "outputs": outputs, "token": request["token"],
        })
        response.raise_for_status()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--approver", default="alice")
    args = parser.parse_args()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        request = json.loads(await reader.readexactly(length) or b"{}")
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        print(f"approving stage {request.get('stage')} of {request.get('workflowrun')}",
              flush=True)
        await asyncio.sleep(1)
        await report(request, args)

    server = await asyncio.start_server(handle, "127.0.0.1", args.port)
    print(f"approver listening on http://127.0.0.1:{args.port}/approve", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
