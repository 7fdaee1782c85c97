"""The overview's figures and its stacked bars, without a server."""

from __future__ import annotations

import re
from datetime import date

from cyclone.ui.charts import figures, percent, runs_per_day, stacked_bars
from cyclone.ui.run_index import RunSummary

TODAY = date(2026, 11, 14)


def summary(name: str, created: str, phase: str = "Succeeded", finished: str = "",
            started: str = "") -> RunSummary:
    return RunSummary("cyclone-t", name, "p", "w", phase, created, started, finished,
                      "Manual", "", 1)


def test_fourteen_days_end_today_with_empty_days_and_older_runs_left_out() -> None:
    days = runs_per_day([summary("a", "2026-11-14T09:00:00Z"),
                         summary("b", "2026-11-14T10:00:00Z", "Failed"),
                         summary("c", "2026-11-01T10:00:00Z"),
                         summary("old", "2026-10-31T23:59:59Z"),
                         summary("odd", "")], TODAY)
    assert days[0].day == date(2026, 11, 1)
    assert days[-1].day == TODAY and len(days) == 14
    assert [d.total for d in days] == [1] + [0] * 12 + [2]
    assert days[-1].phases == {"Succeeded": 1, "Failed": 1}


def test_a_bar_stacks_its_phases_bottom_up_with_heights_by_count() -> None:
    days = runs_per_day([summary(f"s{i}", "2026-11-13T01:00:00Z") for i in range(3)]
                        + [summary("f", "2026-11-13T02:00:00Z", "Failed")]
                        + [summary("r", "2026-11-14T02:00:00Z", "Running")], TODAY)
    svg = str(stacked_bars(days, height=180))
    day = re.search(r'<g class="day" data-date="2026-11-13" data-total="4">(.*?)</g>', svg).group(1)
    rects = re.findall(r'data-phase="(\w+)" data-count="(\d+)" x="[\d.]+" y="([\d.]+)" '
                       r'width="[\d.]+" height="([\d.]+)"', day)
    assert [(p, int(c)) for p, c, _, _ in rects] == [("Succeeded", 3), ("Failed", 1)]
    (_, _, y_ok, h_ok), (_, _, y_bad, h_bad) = rects
    assert float(h_ok) == 3 * float(h_bad)
    assert abs(float(y_bad) + float(h_bad) - float(y_ok)) < 0.2
    assert svg.count('<g class="day"') == 14
    assert 'data-date="2026-11-14" data-total="1"' in svg


def test_an_empty_fortnight_draws_fourteen_empty_days() -> None:
    svg = str(stacked_bars(runs_per_day([], TODAY)))
    assert svg.count('data-total="0"') == 14 and "<rect" not in svg


def test_figures_count_success_over_finished_runs_and_the_median_duration() -> None:
    runs = [summary("a", "2026-11-14T09:00:00Z", "Succeeded", "2026-11-14T09:00:10Z"),
            summary("b", "2026-11-14T09:00:00Z", "Succeeded", "2026-11-14T09:01:00Z",
                    started="2026-11-14T09:00:30Z"),
            summary("c", "2026-11-14T09:00:00Z", "Failed", "2026-11-14T09:10:00Z"),
            summary("d", "2026-11-14T09:00:00Z", "Running")]
    got = figures(runs)
    assert (got.total, got.finished, got.succeeded, got.failed, got.running) == (4, 3, 2, 1, 1)
    assert percent(got.success_rate) == "67%"
    assert got.median_seconds == 30
    assert figures([]).success_rate is None and percent(None) == "—"
