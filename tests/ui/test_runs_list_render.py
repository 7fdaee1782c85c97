"""The browse templates (runs list, overview, stats, palette) rendered without a server for
empty, normal and large data, with tenant text escaped."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from cyclone.server.stats import run_stats
from cyclone.ui.charts import figures, runs_per_day, stacked_bars
from cyclone.ui.pages.browse import FILTER_PHASES, parse_filters
from cyclone.ui.pages.overview import _as_run, palette_items, stats_rows
from cyclone.ui.run_index import Page, RunIndex, RunSummary, summarize
from cyclone.ui.templating import render

NS = "cyclone-t"
HOSTILE = '<img src=x onerror="alert(1)">'


def request(path: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "query_string": b"",
                    "headers": [], "scheme": "http", "server": ("127.0.0.1", 80),
                    "root_path": ""})


def summaries(count: int, phase: str = "Succeeded") -> list[RunSummary]:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return [RunSummary(NS, f"run-{i:05d}", f"p{i % 3}", f"w{i % 5}", phase,
                       f"{today}T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
                       f"{today}T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
                       f"{today}T01:00:00Z" if phase == "Succeeded" else "", "Manual",
                       HOSTILE, 3) for i in range(count)]


def runs_list(runs: list[RunSummary], kept: dict | None = None) -> str:
    return render(request("/runs"), "runs_list.html", {
        "runs": runs, "kept": kept or {}, "problems": [], "page": Page(runs, None, None),
        "projects": sorted({r.project for r in runs}), "workflows": [], "triggers": ("manual",),
        "phases": FILTER_PHASES,
        "older_url": "/runs?older=x" if runs else None, "newer_url": None, "first_url": None,
        "stream_url": "/ui/streams/runs-list?"}).body.decode()


def test_the_runs_list_renders_empty_normal_and_large() -> None:
    assert "No runs yet." in runs_list([])
    assert "No run matches these filters." in runs_list([], {"phase": "Failed"})
    hostile = RunSummary(NS, "r1", HOSTILE, "w", "Failed", "2026-11-01T00:00:00Z", "", "",
                         "Manual", HOSTILE, 1)
    html = runs_list([hostile])
    assert HOSTILE not in html and "&lt;img src=x" in html
    assert 'sse-swap="run-r1"' in html and 'data-phase="Failed"' in html
    large = runs_list(summaries(50))
    assert large.count("<tr id=") == 50


def test_the_overview_renders_empty_and_large() -> None:
    def overview(runs: list[RunSummary], storage: dict | None) -> str:
        now = datetime.now(UTC)
        return render(request("/"), "overview.html", {
            "loading": False, "chart": stacked_bars(runs_per_day(runs, now.date())),
            "figures": figures(runs), "failures": [r for r in runs if r.phase == "Failed"][:8],
            "running": [r for r in runs if r.phase == "Running"][:25], "storage": storage,
            "trend_days": 14}).body.decode()

    empty = overview([], None)
    assert "No failed runs." in empty and "Nothing is running." in empty
    assert "no usage reported yet" in empty
    many = summaries(5000) + summaries(30, "Failed") + summaries(40, "Running")
    html = overview(many, {"total": 1 << 30, "used": 1 << 29, "percent": 50})
    assert html.count('class="mono"') == 8 + 25
    assert HOSTILE not in html and "50%" in html and "512.0 MiB" in html
    loading = render(request("/"), "overview.html", {"loading": True}).body.decode()
    assert "still being loaded" in loading


def test_stats_render_empty_and_large_per_project_and_workflow() -> None:
    from cyclone.server.stats import run_stats
    from cyclone.ui.pages.overview import _as_run

    def stats(runs: list[RunSummary]) -> str:
        now = datetime.now(UTC)
        projects, workflows = stats_rows(runs)
        return render(request("/stats"), "stats.html", {
            "loading": False, "days": 14, "problems": [], "projects": projects,
            "workflows": workflows, "figures": figures(runs),
            "totals": run_stats([_as_run(r) for r in runs], now.date(), now.date()),
            "chart": stacked_bars(runs_per_day(runs, now.date()))}).body.decode()

    assert stats([]).count("No runs in this window.") == 2
    html = stats(summaries(3000) + summaries(300, "Failed"))
    assert html.count("<tr data-project=") == 3 and html.count("<tr data-workflow=") == 15
    assert "<td class=\"num\">3300</td>" in html


def test_palette_entries_rank_prefix_matches_first_and_escape_names() -> None:
    runs = [RunSummary(NS, "deploy-1", "web", "deploy", "Failed", "", "", "", "Manual", "", 1)]
    items = palette_items("dep", ["web", "deps"], [("web", "deploy"), ("web", "undeploy")], runs)
    assert [(i["kind"], i["label"]) for i in items] == [
        ("workflow", "deploy"), ("project", "deps"), ("run", "deploy-1"), ("workflow", "undeploy")]
    assert items[0]["href"] == "/projects/web/workflows/deploy"
    assert [i["label"] for i in palette_items("stat", [], [], [])] == ["Stats"]
    html = render(request("/ui/palette"), "palette_items.html", {
        "items": palette_items("", [HOSTILE], [], []), "q": ""}).body.decode()
    assert HOSTILE not in html and html.count("<li") == 1 + 10


def test_filters_read_from_the_query_and_kept_for_the_url() -> None:
    where, kept, problems = parse_filters({"phase": "Failed", "project": " web ",
                                           "to": "2026-11-02", "from": "2026-11-03",
                                           "unknown": "x"})
    assert (where.phase, where.project, str(where.until)) == ("Failed", "web", "2026-11-02")
    assert kept == {"phase": "Failed", "project": "web", "from": "2026-11-03", "to": "2026-11-02"}
    assert problems == ["from is after to: no run can match"]


def test_a_summary_of_a_large_run_is_as_small_as_a_small_one() -> None:
    import sys

    stages = {f"s{i}": {"status": {"phase": "Succeeded"}, "outputs": ["x" * 1000]}
              for i in range(2000)}
    run = {"metadata": {"name": "big", "namespace": NS, "creationTimestamp":
                        "2026-11-01T00:00:00Z"}, "status": {"stages": stages}}
    index = RunIndex(cluster=None)  # type: ignore[arg-type]
    index.apply("ADDED", run)
    held = index.get(NS, "big")
    assert held == summarize(run) and held.stages == 2000
    assert sum(sys.getsizeof(getattr(held, f)) for f in held.__slots__) < 2000


def test_a_paused_run_is_filtered_shown_and_counted_as_paused_and_going_on() -> None:
    where, kept, problems = parse_filters({"phase": "Paused"})
    assert (where.phase, problems) == ("Paused", [])
    paused = summaries(1, phase="Paused")
    html = runs_list(paused, kept)
    assert 'data-phase="Paused"' in html and '<option value="Paused" selected>' in html
    assert figures(paused).running == 1 and figures(paused).finished == 0
    totals = run_stats([_as_run(r) for r in paused], datetime.now(UTC).date(),
                       datetime.now(UTC).date())
    assert totals["overview"]["phases"]["Running"] == 1
