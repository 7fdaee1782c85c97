"""The web UI's runs list with 10,000 runs stored: server time of its pages.

    python benchmarks/ui_runs_list.py [--stored 10000] [--reps 20] [--quick] [--json FILE]

`--stored` finished one-stage runs are loaded into a fresh embedded store in bulk (as
benchmarks/scale.py does), the server app with the web UI is built in this process and
signed in, then each page is requested over in-process ASGI and timed (medians of
`--reps`): `/runs` (first page of 50), `/runs` filtered by project and workflow, by a name
search that matches only the oldest tenth (the scan's worst case), the second page by
cursor, the overview and the stats page (which summarise every run of the last 14 days),
and as the baseline the REST list route of the workflow's runs (`?limit=50`).
The run index's first list+summary of every run is timed once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from pathlib import Path

from common import machine, median, table
from scale import ADMIN_TOKEN, _load
from stacks import quiet_logs

from cyclone.api import keys


async def measure(stored: int, reps: int, workdir: Path) -> dict:
    import httpx

    from cyclone.kube.embedded import EmbeddedCluster
    from cyclone.server import create_app
    from cyclone.ui.app import mount_ui
    from cyclone.ui.run_index import run_index

    cluster = EmbeddedCluster(workdir / "cluster.db", name=keys.CONTROL_CLUSTER_NAME)
    await cluster.start()
    try:
        app = create_app(cluster=cluster, data_dir=workdir / "server", admin_token=ADMIN_TOKEN)
        mount_ui(app, ADMIN_TOKEN)
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                       base_url="http://cyclone.bench", timeout=300)
            async with client:
                api = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
                for path, body in (
                    ("/projects", {"metadata": {"name": "demo"}}),
                    ("/projects/demo/stages", {"metadata": {"name": "build"}, "spec": {
                        "pod": {"spec": {"containers": [
                            {"image": "busybox", "command": ["true"]}]}}}}),
                    ("/projects/demo/workflows", {"metadata": {"name": "ci"},
                                                  "spec": {"stages": [{"name": "build"}]}}),
                ):
                    response = await client.post(f"/apis/v1alpha1{path}", json=body,
                                                 headers=api)
                    response.raise_for_status()
                load_seconds = await _load(cluster, stored)
                form = (await client.get("/login")).text
                csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
                signed = await client.post("/login", data={"token": ADMIN_TOKEN, "csrf": csrf})
                assert signed.status_code == 303, signed.text

                index = run_index(app.state.cyclone)
                began = time.perf_counter()
                await index.ready(within=300)
                index_seconds = time.perf_counter() - began
                first = (await client.get("/runs")).text
                older = re.search(r'href="(/runs\?older=[^"]+)"', first).group(1)

                async def timed(url: str, **kwargs) -> float:
                    samples = []
                    for _ in range(reps + 1):
                        began = time.perf_counter()
                        response = await client.get(url, **kwargs)
                        samples.append(time.perf_counter() - began)
                        response.raise_for_status()
                    return median(samples[1:])

                search = f"ci-{stored // 10 - 1:05d}"[:-2]
                figures = {
                    "first_page": await timed("/runs"),
                    "filtered_page": await timed("/runs?project=demo&workflow=ci"),
                    "search_page": await timed(f"/runs?q={search}"),
                    "second_page": await timed(older.replace("&amp;", "&")),
                    "overview": await timed("/"),
                    "stats": await timed("/stats"),
                    "rest_page": await timed(
                        "/apis/v1alpha1/projects/demo/workflows/ci/workflowruns?limit=50",
                        headers=api),
                }
                rows = first.count("<tr id=")
                await index.stop()
    finally:
        await cluster.close()
    if rows != 50 or index.count(keys.tenant_namespace(keys.DEFAULT_TENANT)) != stored:
        raise RuntimeError(f"first page had {rows} rows, the index {index.count} runs")
    return {"stored": stored, "reps": reps, "load_seconds": load_seconds,
            "index_seconds": index_seconds, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=10000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="2,000 runs stored, 5 reps")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if args.quick:
        args.stored, args.reps = 2000, 5
    quiet_logs()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-ui-") as tmp:
        result = asyncio.run(measure(args.stored, args.reps, Path(tmp)))
    print(f"\nWeb UI runs list with {result['stored']:,} runs stored "
          f"(loaded in {result['load_seconds']:.1f}s; run index first list "
          f"{result['index_seconds'] * 1000:.0f} ms)")
    print(table(["/runs first page ms", "project+workflow ms", "name search ms",
                 "second page ms", "REST list (50) ms", "/ ms", "/stats ms", "reps"], [[
        result["first_page"] * 1000, result["filtered_page"] * 1000,
        result["search_page"] * 1000, result["second_page"] * 1000,
        result["rest_page"] * 1000, result["overview"] * 1000, result["stats"] * 1000,
        result["reps"]]]))
    print("medians, server time over in-process ASGI (sign-in session, 50 rows a page); "
          "target: first page <= 100 ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
