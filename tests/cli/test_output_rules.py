"""The pure rules under `cyclone get`'s output: kubectl's JSONPath templates, label
selectors, `--since` durations, table layout within a width, and the Paused phase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.cells import cell_len

from cyclone.cli import jsonpath
from cyclone.cli.client import CliError
from cyclone.cli.filters import filter_objects, label_matcher, parse_since
from cyclone.cli.kinds import run_display_phase
from cyclone.cli.output import format_table, sort_objects
from cyclone.cli.watch import run_lines

LIST = {"kind": "List", "items": [
    {"metadata": {"name": "a", "labels": {"tier": "web"}}, "spec": {"n": 2, "tags": ["x"]}},
    {"metadata": {"name": "b", "labels": {"tier": "db", "team": "core"}},
     "spec": {"n": 10, "tags": ["y", "z"]}},
]}


def test_jsonpath_templates_render_like_kubectl() -> None:
    assert jsonpath.render("{.items[*].metadata.name}", LIST) == "a b"
    assert jsonpath.render('{range .items[*]}{.metadata.name}={.spec.n}{"\\n"}{end}',
                           LIST) == "a=2\nb=10\n"
    assert jsonpath.render("{.items[-1].spec.tags}", LIST) == '["y","z"]'
    assert jsonpath.render("{.items[?(@.metadata.labels.tier==\"db\")].spec.n}", LIST) == "10"
    assert jsonpath.render("{..tags[0]}", LIST) == "x y"
    assert jsonpath.render("{.items[0].metadata.labels['tier']}", LIST) == "web"
    assert jsonpath.render("names: {.items[0:1].metadata.name}", LIST) == "names: a"
    assert jsonpath.render("{.items[0].missing}", LIST) == ""


@pytest.mark.parametrize("template", ["{range .items[*]}", "{end}", "{.items[", "{.a[x]}"])
def test_bad_jsonpath_templates_are_refused(template: str) -> None:
    with pytest.raises(jsonpath.JsonPathError):
        jsonpath.render(template, LIST)


def test_sort_by_orders_numbers_as_numbers_and_puts_missing_values_last() -> None:
    items = [*LIST["items"], {"metadata": {"name": "c"}}]
    assert [o["metadata"]["name"] for o in sort_objects(items, ".spec.n")] == ["a", "b", "c"]
    by_created = sort_objects([
        {"metadata": {"name": "new", "creationTimestamp": "2026-01-02T00:00:00Z"}},
        {"metadata": {"name": "old", "creationTimestamp": "2026-01-01T00:00:00Z"}}])
    assert [o["metadata"]["name"] for o in by_created] == ["old", "new"]


def test_label_selectors_follow_kubernetes_grammar() -> None:
    def names(selector: str) -> list[str]:
        return [o["metadata"]["name"] for o in filter_objects(LIST["items"],
                                                               selector=selector)]

    assert names("tier=web") == ["a"]
    assert names("tier==db,team=core") == ["b"]
    assert names("tier!=web") == ["b"]
    assert names("tier in (web, db)") == ["a", "b"]
    assert names("tier notin (web)") == ["b"]
    assert names("team") == ["b"]
    assert names("!team") == ["a"]
    for bad in ("tier=(x", "=web", ""):
        with pytest.raises(CliError):
            label_matcher(bad)


def test_since_takes_kubectl_durations() -> None:
    assert parse_since("90s") == timedelta(seconds=90)
    assert parse_since("1h30m") == timedelta(minutes=90)
    assert parse_since("2d") == timedelta(days=2)
    assert parse_since("1w") == timedelta(days=7)
    for bad in ("", "1y", "h", "10"):
        with pytest.raises(CliError):
            parse_since(bad)
    now = datetime(2026, 1, 2, tzinfo=UTC)
    objs = [{"metadata": {"name": "recent", "creationTimestamp": "2026-01-01T23:30:00Z"}},
            {"metadata": {"name": "old", "creationTimestamp": "2025-12-30T00:00:00Z"}}]
    assert [o["metadata"]["name"] for o in filter_objects(objs, since="1h", now=now)] == [
        "recent"]


def test_tables_are_whole_without_a_width_and_fit_one_when_given() -> None:
    rows = [["a-rather-long-name", "Failed", "the container exited with code 3 after a while"]]
    whole = format_table(["NAME", "PHASE", "MESSAGE"], rows)
    assert whole[1].endswith("after a while")
    fitted = format_table(["NAME", "PHASE", "MESSAGE"], rows, width=40)
    assert all(cell_len(line) <= 40 for line in fitted)
    assert fitted[1].startswith("a-rather-long-name   Failed   the") and fitted[1].endswith("…")
    assert format_table(["NAME"], [["x"]], no_headers=True) == ["x"]


def test_a_running_run_held_by_a_pause_reads_paused() -> None:
    paused = {"status": {"overall": {"phase": "Running", "reason": "ManuallyPause"}}}
    assert run_display_phase(paused) == "Paused"
    resumed = {"status": {"overall": {"phase": "Running", "reason": "ManuallyResume"}}}
    assert run_display_phase(resumed) == "Running"
    assert run_display_phase({}) == "Pending"


def test_live_view_keeps_stage_names_whole_in_a_narrow_terminal() -> None:
    long = "a-stage-name-that-takes-most-of-a-line"
    workflow = {"spec": {"stages": [{"name": "first"}, {"name": long, "depends": ["first"]},
                                    {"name": "last", "depends": ["first", long]}]}}
    run = {"metadata": {"name": "r", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "status": {"overall": {"phase": "Running"}, "stages": {
               "first": {"status": {"phase": "Failed", "reason": "PodFailed",
                                    "message": "a long explanation of what went wrong"}}}}}
    now = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    narrow = [line for line, _ in run_lines(run, workflow, now, width=80)]
    assert all(cell_len(line) <= 80 for line in narrow)
    assert narrow[1].split() == ["STAGE", "PHASE", "DURATION", "MESSAGE"]
    assert narrow[2].startswith("✖ first") and narrow[2].endswith("…")
    assert narrow[3].split()[:3] == ["○", long, "Pending"]
    assert narrow[4].startswith("    ○ last")
    wide = [line for line, _ in run_lines(run, workflow, now)]
    assert wide[1].split() == ["STAGE", "PHASE", "AFTER", "DURATION", "MESSAGE"]
    assert wide[2].endswith("a long explanation of what went wrong")
