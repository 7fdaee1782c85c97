"""The stage panel's log viewer on a 100,000-line log, in a real Chromium against a live
`cyclone up`, next to the same text dropped into a plain <pre>.

    python benchmarks/ui_log_viewer.py [--lines 100000] [--json out.json]

A stage prints the log (every tenth line coloured), the collector stores it, and the panel
opens it. Figures: time to the first lines on screen and to the whole log loaded, a scroll
to the end, a search for the last line, and the total of the main thread's long tasks
(PerformanceObserver 'longtask', tasks over 50 ms) while doing so; the baseline is the
same log fetched and set as the text of a <pre>. Also: the server's search across the run's
logs (`…/runs/{r}/search`) for the last line. Needs bubblewrap (host runtime) and
/usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from support.live_up import cli_ok, live_up  # noqa: E402
from support.ui import CHROMIUM, CHROMIUM_ARGS, browser_sign_in  # noqa: E402

PROJECT = "bench-logs"
OBSERVE = """
window.__longTasks = [];
try {
  new PerformanceObserver(list => { for (const e of list.getEntries())
    window.__longTasks.push(e.duration); }).observe({type: 'longtask', buffered: true});
} catch (e) {}
window.__firstRow = 0;
new MutationObserver((_, observer) => {
  if (document.querySelector('.logview-row[data-line]')) {
    window.__firstRow = performance.now(); observer.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""
LONG_TASKS = "() => { const t = window.__longTasks.splice(0); return [t.length, " \
             "t.reduce((a, b) => a + b, 0)]; }"
AFTER_PAINT = "() => new Promise(done => requestAnimationFrame(() => " \
              "requestAnimationFrame(() => done(performance.now()))))"


def manifests(lines: int) -> str:
    script = (f"seq 1 {lines} | awk '{{ if ($1 % 10 == 0) printf \"\\033[32mline %d ok"
              f"\\033[0m\\n\", $1; else print \"line \" $1 \" of the build, some text\" }}'")
    return f"""
kind: Project
metadata: {{name: {PROJECT}}}
---
kind: Stage
metadata: {{name: big, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, {json.dumps(script)}]
---
kind: Workflow
metadata: {{name: biglog, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: big}}]
"""


def poll(page, expression: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.01)


def measure_viewer(page, url: str, lines: int) -> dict[str, float]:
    page.add_init_script(OBSERVE)
    page.goto(url, wait_until="commit")
    poll(page, "window.__firstRow > 0")
    poll(page, "document.querySelector('[data-logview]')?.dataset.state === 'done'")
    loaded = page.evaluate("performance.now()")
    first = page.evaluate("window.__firstRow")
    status = page.locator("[data-log-status]").inner_text()
    assert status.startswith(f"{lines} lines"), status
    load_tasks = page.evaluate(LONG_TASKS)

    began = page.evaluate("performance.now()")
    page.evaluate("() => { const s = document.querySelector('[data-log-scroll]');"
                  " s.scrollTop = s.scrollHeight; }")
    poll(page, f"!!document.querySelector('.logview-row[data-line=\"{lines}\"]')")
    scrolled = page.evaluate(AFTER_PAINT) - began

    began = page.evaluate("performance.now()")
    page.fill("[data-log-search]", f"line {lines - 1} of")
    poll(page, "document.querySelector('[data-log-count]').textContent === '1 of 1'")
    searched = page.evaluate(AFTER_PAINT) - began - 120  # the box waits 120 ms for typing
    tasks = page.evaluate(LONG_TASKS)
    return {"first_lines_ms": first, "loaded_ms": loaded, "scroll_end_ms": scrolled,
            "search_ms": max(searched, 0.0), "long_tasks": load_tasks[0] + tasks[0],
            "long_task_ms": load_tasks[1] + tasks[1]}


def measure_pre(page, log_url: str, lines: int) -> dict[str, float]:
    page.evaluate(LONG_TASKS)
    figures = page.evaluate("""async ([url, needle]) => {
      const text = await (await fetch(url)).text();
      const began = performance.now();
      document.body.replaceChildren();
      const pre = document.createElement('pre');
      pre.textContent = text;
      document.body.appendChild(pre);
      document.body.offsetHeight;
      await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
      const shown = performance.now() - began;
      const scroll = performance.now();
      window.scrollTo(0, document.body.scrollHeight);
      await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
      const scrolled = performance.now() - scroll;
      const search = performance.now();
      const found = window.find(needle);
      return [shown, scrolled, performance.now() - search, found];
    }""", [log_url, f"line {lines - 1} of"])
    tasks = page.evaluate(LONG_TASKS)
    return {"render_ms": figures[0], "scroll_end_ms": figures[1], "search_ms": figures[2],
            "long_tasks": tasks[0], "long_task_ms": tasks[1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="a 20,000-line log")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.lines = 20_000
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as data, live_up(Path(data)) as up:
        cli_ok(up, "apply", "-f", "-", input=manifests(args.lines))
        cli_ok(up, "run", "biglog", "-p", PROJECT, "--name", "biglog-1")
        api = httpx.Client(base_url=up.url, headers={"Authorization": f"Bearer {up.token}"})
        run = f"/apis/v1alpha1/projects/{PROJECT}/workflows/biglog/workflowruns/biglog-1"
        deadline = time.monotonic() + 300
        while not api.get(f"{run}/logs", params={"stage": "big"}).text.endswith(
                f"line {args.lines} ok\x1b[0m\n"):
            if time.monotonic() > deadline:
                raise TimeoutError("the log was never stored whole")
            time.sleep(0.5)
        stage = f"/projects/{PROJECT}/workflows/biglog/runs/biglog-1/stages/big"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            browser_sign_in(page, up.url, up.token)
            viewer = measure_viewer(page, up.url + stage, args.lines)
            run_search = page.evaluate("""async url => {
              const began = performance.now();
              const html = await (await fetch(url, {headers: {'HX-Request': 'true'}})).text();
              return [performance.now() - began, html.includes('1 matching line')];
            }""", up.url + stage.rsplit("/stages/", 1)[0] + f"/search?q=line+{args.lines - 1}+of")
            assert run_search[1], "the run search did not find the line"
            viewer["run_search_ms"] = run_search[0]
            baseline = measure_pre(page, up.url + stage + "/log", args.lines)
            browser.close()
    figures = {"lines": args.lines, "viewer": viewer, "plain_pre": baseline}
    print(f"log viewer, {args.lines:,} lines (Chromium, {CHROMIUM})")
    print(f"{'':28}{'viewer':>12}{'plain <pre>':>14}{'ratio':>8}")
    rows = [("first lines on screen (ms)", viewer["first_lines_ms"], baseline["render_ms"]),
            ("whole log loaded (ms)", viewer["loaded_ms"], baseline["render_ms"]),
            ("scroll to the end (ms)", viewer["scroll_end_ms"], baseline["scroll_end_ms"]),
            ("search the last line (ms)", viewer["search_ms"], baseline["search_ms"]),
            ("long tasks (count)", viewer["long_tasks"], baseline["long_tasks"]),
            ("long tasks total (ms)", viewer["long_task_ms"], baseline["long_task_ms"])]
    for label, ours, theirs in rows:
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        print(f"{label:28}{ours:12.1f}{theirs:14.1f}{ratio:>8}")
    print(f"search across the run's logs on the server: {viewer['run_search_ms']:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
