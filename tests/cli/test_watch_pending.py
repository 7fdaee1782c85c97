"""`cyclone run --watch` / `cyclone watch` printed to a pipe: why a stage's pod has not
started is a line each time it changes, and the failure at the pending timeout follows."""

from __future__ import annotations

import io

from rich.console import Console

from cyclone.cli.watch import watch_run

WORKFLOW = {"spec": {"stages": [{"name": "build"}]}}
PULL = 'container "main": ErrImagePull: failed to pull "cyclone/missing:0.1.0"'
BACK_OFF = 'container "main": ImagePullBackOff: Back-off pulling image "cyclone/missing:0.1.0"'


def run_with(build: dict, overall: str = "Running") -> dict:
    return {"metadata": {"name": "ci-x", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"overall": {"phase": overall, "startTime": "2026-01-01T00:00:00Z"},
                       "stages": {"build": {"status": build}}}}


def pending(message: str) -> dict:
    return {"phase": "Running", "reason": "PodPending", "message": message}


def test_each_new_reason_a_pod_waits_for_is_one_line_then_the_failure():
    states = [
        run_with({"phase": "Running", "reason": "StagePodCreated"}),
        run_with(pending(PULL)),
        run_with(pending(PULL)),
        run_with(pending(BACK_OFF)),
        run_with({"phase": "Running", "reason": "PodRunning"}),
        run_with({"phase": "Failed", "reason": "ErrImagePull",
                  "message": f'pod "p" did not start within 300s: {PULL}'}, "Failed"),
    ]
    output = io.StringIO()
    watch_run(iter(states), WORKFLOW, Console(file=output, force_terminal=False, width=200))
    lines = output.getvalue().splitlines()
    assert lines[:5] == [
        "build: Running (StagePodCreated)",
        f"build: Running (PodPending: {PULL})",
        f"build: Running (PodPending: {BACK_OFF})",
        "build: Running (PodRunning)",
        "build: Failed (ErrImagePull)",
    ]
    assert f"did not start within 300s: {PULL}" in output.getvalue()
