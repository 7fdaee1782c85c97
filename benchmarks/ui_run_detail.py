"""The web UI's run page for a stored 2,000-stage run: server render, layout, page
interactive in Chromium, and how much of the page one live change touches.

    python benchmarks/ui_run_detail.py [--stages 2000] [--reps 10] [--quick] [--json FILE]

A random layered DAG of `--stages` stages (benchmarks/common.py `random_dag`) is stored as a
Workflow, with a run whose every stage has finished but one (the run is Running). The server
app with the web UI is served by uvicorn in this process (no engine: the run changes only
when the benchmark changes it). Figures, medians of `--reps`:

- server render: `GET /projects/p/workflows/w/runs/r` over HTTP (target 300 ms), with the
  REST `GET` of the same run as the baseline; once with the workflow's layout kept from an
  earlier view (as on every view after the first), once without;
- layout: `layout_dag` of the workflow (target 200 ms), with a plain topological sort of the
  same graph as the baseline;
- interactive: Chromium's `page.goto` until the DAG is drawn and dag.js and run.js have set
  it up (target 1.5 s), with `page.goto` of the REST run JSON as the baseline; then until
  the stage table (which a run this large gets right after the page) is in place;
- one live change: the run stream carries one stage going Running → Succeeded; a
  MutationObserver counts the DAG nodes and table rows that changed (target: one each).
"""

from __future__ import annotations

import argparse
import asyncio
import graphlib
import json
import re
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import machine, median, random_dag, table
from stacks import quiet_logs

from cyclone.api import keys

ADMIN_TOKEN = "bench-admin-token"
NAMESPACE = keys.tenant_namespace(keys.DEFAULT_TENANT)
PROJECT, WORKFLOW, RUN = "bench", "big", "big-run"
CHROMIUM = "/usr/bin/chromium"
TARGETS = {"render": 0.300, "layout": 0.200, "interactive": 1.5}
OBSERVE = """() => {
  window.__mutated = new Set();
  const mark = el => {
    const node = el && (el.nodeType === 1 ? el : el.parentElement);
    const owner = node && node.closest('.dag-node, #run-stages tbody tr');
    if (owner) window.__mutated.add((owner.matches('tr') ? 'row:' : 'node:') +
                                    owner.getAttribute('data-stage'));
  };
  new MutationObserver(list => list.forEach(m => mark(m.target)))
    .observe(document.querySelector('main'), {subtree: true, childList: true,
                                               attributes: true, characterData: true});
}"""


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def stored_objects(stages: int) -> tuple[dict, dict, str]:
    """The workflow, its run (every stage done but the last one, which runs) and that
    stage's name."""
    graph = random_dag(stages)
    labels = {keys.LABEL_PROJECT: PROJECT}
    workflow = {"apiVersion": keys.API_VERSION, "kind": "Workflow",
                "metadata": {"name": WORKFLOW, "namespace": NAMESPACE, "labels": labels},
                "spec": {"stages": [{"name": n, "depends": d} for n, d in graph.items()]}}
    begin = datetime.now(UTC) - timedelta(hours=1)
    statuses = {}
    for i, name in enumerate(graph):
        start = begin + timedelta(seconds=i)
        statuses[name] = {"status": {"phase": "Succeeded", "startTime": stamp(start),
                                     "lastTransitionTime": stamp(start + timedelta(seconds=3))},
                          "attempts": 1, "depends": graph[name]}
    running = list(graph)[-1]
    statuses[running]["status"] = {"phase": "Running",
                                   "startTime": statuses[running]["status"]["startTime"]}
    run = {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
           "metadata": {"name": RUN, "namespace": NAMESPACE,
                        "labels": {**labels, keys.LABEL_WORKFLOW: WORKFLOW}},
           "spec": {"workflowRef": {"name": WORKFLOW}},
           "status": {"overall": {"phase": "Running", "startTime": stamp(begin)},
                      "stages": statuses}}
    return workflow, run, running


class Served:
    """The server app with the web UI on a free port, its loop in a thread of its own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        import uvicorn

        from cyclone.kube.embedded import EmbeddedCluster
        from cyclone.server import create_app
        from cyclone.ui.app import mount_ui

        self.loop = asyncio.get_running_loop()
        self.cluster = EmbeddedCluster(self.workdir / "cluster.db",
                                       name=keys.CONTROL_CLUSTER_NAME)
        await self.cluster.start()
        app = create_app(cluster=self.cluster, data_dir=self.workdir / "server",
                         admin_token=ADMIN_TOKEN)
        mount_ui(app, ADMIN_TOKEN)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="error", lifespan="on"))
        serving = asyncio.create_task(self.server.serve())
        self.ready.set()
        await serving
        await self.cluster.close()

    def __enter__(self) -> Served:
        import httpx

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.ready.is_set() and httpx.get(f"{self.url}/healthcheck").is_success:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    def call(self, coro, timeout: float = 120):
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def timed(action, reps: int) -> float:
    samples = []
    for _ in range(reps + 1):
        began = time.perf_counter()
        action()
        samples.append(time.perf_counter() - began)
    return median(samples[1:])


def layout_figures(workflow: dict, reps: int) -> dict:
    from cyclone.ui.dag_view import workflow_graph
    from cyclone.ui.layout import layout_dag

    names, edges = workflow_graph(workflow)

    def topo() -> None:
        sorter = graphlib.TopologicalSorter({n: [] for n in names})
        for a, b in edges:
            sorter.add(b, a)
        list(sorter.static_order())

    return {"layout": timed(lambda: layout_dag(names, edges), reps),
            "topo_sort": timed(topo, reps)}


def measure(stages: int, reps: int, workdir: Path) -> dict:
    import httpx
    from playwright.sync_api import sync_playwright

    workflow, run, running = stored_objects(stages)
    figures = layout_figures(workflow, reps)
    with Served(workdir) as served:
        api = httpx.Client(base_url=served.url, timeout=120,
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        api.post("/apis/v1alpha1/projects",
                 json={"metadata": {"name": PROJECT}}).raise_for_status()
        served.call(served.cluster.create(workflow, namespace=NAMESPACE))
        status = run.pop("status")
        created = served.call(served.cluster.create(run, namespace=NAMESPACE))
        stored = served.call(served.cluster.replace_status({**created, "status": status}))
        rest = f"/apis/v1alpha1/projects/{PROJECT}/workflows/{WORKFLOW}/workflowruns/{RUN}"
        page_path = f"/projects/{PROJECT}/workflows/{WORKFLOW}/runs/{RUN}"
        web = httpx.Client(base_url=served.url, timeout=120)
        csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text).group(1)
        signed = web.post("/login", data={"token": ADMIN_TOKEN, "csrf": csrf})
        assert signed.status_code == 303, signed.text
        html = web.get(page_path).text
        assert len(re.findall(r'<g class="dag-node[ "]', html)) == stages, "stages missing"
        figures["render"] = timed(lambda: web.get(page_path).raise_for_status(), reps)
        from cyclone.ui.pages.run_detail import cached_layout

        def cold() -> None:
            cached_layout.cache_clear()
            web.get(page_path).raise_for_status()

        figures["render_cold"] = timed(cold, reps)
        figures["rest_get"] = timed(lambda: api.get(rest).raise_for_status(), reps)
        figures["page_bytes"] = len(html.encode())

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                "--disable-dev-shm-usage"])
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_cookies([{"name": c.name, "value": c.value, "url": served.url}
                                 for c in web.cookies.jar])
            page = context.new_page()
            ready = ("() => { const svg = document.getElementById('run-dag'); "
                     "return !!(svg && svg._dag && window.CycloneDag && window.CycloneRun); }")

            def interactive() -> None:
                page.goto(served.url + page_path, wait_until="commit")
                page.wait_for_function(ready, timeout=30000, polling=10)

            figures["interactive"] = timed(interactive, max(3, reps // 2))
            table_ready = ("n => document.querySelectorAll('#run-stages tbody tr').length === n")

            def with_table() -> None:
                interactive()
                page.wait_for_function(table_ready, arg=stages, timeout=30000, polling=10)

            figures["with_table"] = timed(with_table, max(3, reps // 2))
            raw = context.new_page()
            raw.set_extra_http_headers({"Authorization": f"Bearer {ADMIN_TOKEN}"})
            figures["rest_in_browser"] = timed(lambda: raw.goto(served.url + rest),
                                               max(3, reps // 2))

            page.goto(served.url + page_path)
            page.wait_for_function(ready, timeout=30000)
            page.wait_for_timeout(1500)
            page.evaluate(OBSERVE)
            finished = json.loads(json.dumps(stored))
            entry = finished["status"]["stages"][running]["status"]
            entry.update(phase="Succeeded", lastTransitionTime=stamp(datetime.now(UTC)))
            began = time.perf_counter()
            served.call(served.cluster.replace_status(finished))
            page.wait_for_function(
                "name => document.querySelector(`#run-dag .dag-node[data-stage='${name}']`)"
                ".dataset.phase === 'Succeeded'", arg=running, timeout=30000, polling=10)
            figures["live_update"] = time.perf_counter() - began
            page.wait_for_timeout(1500)
            mutated = sorted(page.evaluate("Array.from(window.__mutated)"))
            figures["mutated"] = mutated
            browser.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="500 stages, 3 reps")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if args.quick:
        args.stages, args.reps = 500, 3
    quiet_logs()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-run-page-") as tmp:
        result = measure(args.stages, args.reps, Path(tmp))
    nodes = [m for m in result["mutated"] if m.startswith("node:")]
    rows = [m for m in result["mutated"] if m.startswith("row:")]
    print(f"\nRun page of a {args.stages:,}-stage run ({result['page_bytes'] / 1e6:.1f} MB "
          f"of HTML), medians of {args.reps}")
    print(table(["figure", "measured ms", "target ms", "baseline", "baseline ms", "ratio"], [
        ["server render", result["render"] * 1000, TARGETS["render"] * 1000,
         "REST GET of the run", result["rest_get"] * 1000,
         result["render"] / result["rest_get"]],
        ["server render, layout not kept", result["render_cold"] * 1000,
         TARGETS["render"] * 1000, "REST GET of the run", result["rest_get"] * 1000,
         result["render_cold"] / result["rest_get"]],
        ["layout", result["layout"] * 1000, TARGETS["layout"] * 1000,
         "topological sort", result["topo_sort"] * 1000,
         result["layout"] / result["topo_sort"]],
        ["page interactive", result["interactive"] * 1000, TARGETS["interactive"] * 1000,
         "browser GET of the run JSON", result["rest_in_browser"] * 1000,
         result["interactive"] / result["rest_in_browser"]],
    ]))
    print(f"\nthe stage table (loaded after the page for large runs) is in place "
          f"{result['with_table'] * 1000:.0f} ms after page.goto")
    print(f"\none live change ({result['live_update'] * 1000:.0f} ms from the store to the "
          f"node): {len(nodes)} DAG node(s) and {len(rows)} table row(s) changed "
          f"(target 1 and 1): {', '.join(result['mutated'])}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
