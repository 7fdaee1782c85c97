from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from rich.console import Console

from cyclone.cli.watch import dag_order, failure_reason, render_run, stage_rows

WORKFLOW = {"spec": {"stages": [
    {"name": "deploy", "depends": ["build", "lint"]},
    {"name": "lint", "depends": ["checkout"], "trivial": True},
    {"name": "build", "depends": ["checkout"]},
    {"name": "checkout"},
]}}


def run_with(stages: dict, overall: str = "Running") -> dict:
    return {"metadata": {"name": "ci-x", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"overall": {"phase": overall, "startTime": "2026-01-01T00:00:00Z"},
                       "stages": {name: {"status": status} for name, status in stages.items()}}}


def test_dag_order_puts_dependencies_first_and_keeps_declaration_order() -> None:
    order = dag_order({"deploy": ("build", "lint"), "lint": ("checkout",),
                       "build": ("checkout",), "checkout": ()})
    assert order == ["checkout", "lint", "build", "deploy"]


def test_dag_order_survives_a_cycle() -> None:
    assert sorted(dag_order({"a": ("b",), "b": ("a",), "c": ()})) == ["a", "b", "c"]


def test_failure_reason_names_the_first_non_trivial_failed_stage() -> None:
    run = run_with({
        "checkout": {"phase": "Succeeded"},
        "lint": {"phase": "Failed", "reason": "PodFailed", "message": "style"},
        "build": {"phase": "Failed", "reason": "PodFailed", "message": "exit code 2"},
    }, "Failed")
    assert failure_reason(run, WORKFLOW) == "stage build failed: PodFailed: exit code 2"


def test_failure_reason_falls_back_to_the_overall_status() -> None:
    run = run_with({}, "Failed")
    run["status"]["overall"].update(reason="Timeout", message="run exceeded 1h")
    assert failure_reason(run, None) == "Timeout: run exceeded 1h"


def test_rows_cover_declared_stages_not_yet_started() -> None:
    rows = stage_rows(run_with({"checkout": {"phase": "Running"}}), WORKFLOW)
    assert [(r.name, r.phase) for r in rows] == [
        ("checkout", "Running"), ("lint", "Pending"), ("build", "Pending"),
        ("deploy", "Pending")]
    assert [r.name for r in rows if r.trivial] == ["lint"]


def test_render_shows_each_stage_with_phase_and_dependencies() -> None:
    console = Console(record=True, width=120, color_system=None)
    run = run_with({
        "checkout": {"phase": "Succeeded", "startTime": "2026-01-01T00:00:00Z",
                     "lastTransitionTime": "2026-01-01T00:00:07Z"},
        "build": {"phase": "Running", "startTime": "2026-01-01T00:00:07Z"},
    })
    console.print(render_run(run, WORKFLOW, now=datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)))
    text = console.export_text()
    assert "workflowrun ci-x  ● Running  1m" in text
    lines = {line.split()[1]: line for line in text.splitlines()[2:] if line.strip()}
    assert lines["checkout"].split()[2:4] == ["Succeeded", "7s"]
    assert "build, lint" in lines["deploy"]
    assert "(trivial)" in lines["lint"]
    assert "53s" in lines["build"]


def test_watch_on_a_terminal_redraws_until_the_run_ends() -> None:
    import io

    from cyclone.cli.watch import watch_run

    states = iter([
        run_with({"checkout": {"phase": "Running"}}),
        run_with({"checkout": {"phase": "Succeeded"}, "build": {"phase": "Running"}}),
        run_with({"checkout": {"phase": "Succeeded"}, "build": {"phase": "Failed",
                  "reason": "PodFailed"}}, "Failed"),
    ])
    fetched: list[dict] = []

    def fetch() -> Iterator[dict]:
        for state in states:
            fetched.append(state)
            yield state

    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=100, color_system=None)
    final = watch_run(fetch(), WORKFLOW, console)
    assert len(fetched) == 3
    assert final["status"]["overall"]["phase"] == "Failed"
    assert "✖ build" in output.getvalue()
