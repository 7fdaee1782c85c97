"""The live `run --watch` view and `get wfr NAME` on a real 80-column terminal (a tmux pane)
against a live `cyclone up`: every line fits, nothing wraps, and the live view redraws in
place (one header, each stage once)."""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from rich.cells import cell_len
from support.live_up import LiveUp, live_up, shell_stage_manifest

PROJECT = "term80"
LONG_A = "compile-everything-for-the-release"
LONG_B = "unit-tests-with-a-rather-long-name"


def stage(name: str, script: str) -> str:
    return shell_stage_manifest(PROJECT, name, script)


MANIFESTS = f"""\
kind: Project
metadata: {{name: {PROJECT}}}
{stage("prepare", "sleep 2")}\
{stage(LONG_A, "echo compiled")}\
{stage(LONG_B, "echo failing; exit 3")}\
{stage("publish", "echo published")}\
---
kind: Workflow
metadata: {{name: release, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages:
  - {{name: prepare}}
  - {{name: {LONG_A}, depends: [prepare]}}
  - {{name: {LONG_B}, depends: [prepare]}}
  - {{name: publish, depends: [{LONG_A}, {LONG_B}]}}
"""


class Pane:
    """A detached tmux session of 80x40 on a private server socket."""

    def __init__(self, command: str) -> None:
        self.socket = f"cyclone-test-{secrets.token_hex(4)}"
        self.name = "pane"
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d",
                        "-x", "80", "-y", "40", "-s", self.name,
                        f"{command}; echo EXIT=$?; sleep 600"], check=True)

    def capture(self) -> list[str]:
        """The pane's lines, wrapped lines joined back (so a wrapped line is longer)."""
        answer = subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-J",
                                 "-t", self.name], capture_output=True, text=True, check=True)
        return answer.stdout.rstrip("\n").splitlines()

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def cyclone_command(instance: LiveUp, *args: str) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in instance.cli_env().items()
                   if k in ("CYCLONE_CONFIG", "PATH", "HOME"))
    return f"env -u COLUMNS -u LINES {env} TERM=xterm-256color " + shlex.join(
        [sys.executable, "-m", "cyclone.cli.main", *args])


def run_in_pane(instance: LiveUp, *args: str, timeout: float = 60) -> tuple[list[str],
                                                                           list[list[str]]]:
    """The final screen and every screen seen while the command ran."""
    pane = Pane(cyclone_command(instance, *args))
    frames: list[list[str]] = []
    try:
        deadline = time.monotonic() + timeout
        while True:
            screen = pane.capture()
            frames.append(screen)
            if any(line.startswith("EXIT=") for line in screen):
                return screen, frames
            assert time.monotonic() < deadline, "\n".join(screen)
            time.sleep(0.2)
    finally:
        pane.close()


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    with live_up(tmp_path_factory.mktemp("term80")) as up:
        applied = up.run_cli("apply", "-f", "-", input=MANIFESTS)
        assert applied.returncode == 0, applied.stderr
        yield up


def view_lines(screen: list[str]) -> list[str]:
    """The lines the command drew, without the shell's `EXIT=` and the one-line error."""
    return [line for line in screen
            if not line.startswith(("EXIT=", "error:")) and line.strip()]


def test_live_watch_view_fits_80_columns_and_redraws_in_place(instance) -> None:
    screen, frames = run_in_pane(instance, "run", "release", "-p", PROJECT, "--name",
                                 "release-1", "--watch", "--interval", "0.2")
    assert "EXIT=1" in screen
    assert any(line.startswith("error: workflowrun release-1 Failed") for line in screen)
    running = [f for f in frames if any("● Running" in line for line in f)]
    assert running, "the live view never showed the run going"
    for frame in frames:
        drawn = view_lines(frame)
        assert all(cell_len(line) <= 80 for line in drawn), "\n".join(drawn)
        assert sum(line.startswith("workflowrun release-1 ") for line in drawn) <= 1, \
            "\n".join(drawn)
        assert sum(line.split()[:2] == ["STAGE", "PHASE"] for line in drawn) <= 1
    final = view_lines(screen)
    stage_lines = [line for line in final if line.lstrip()[:1] in "✔✖⊘○●"]
    assert all(re.search(r"\s\d+s(\s|$)", line) for line in stage_lines), "\n".join(final)
    stage_column = [line.split()[1] for line in stage_lines]
    assert stage_column[0] == "prepare" and stage_column[-1] == "publish", "\n".join(final)
    assert sorted(stage_column) == sorted(["prepare", LONG_A, LONG_B, "publish"]), "\n".join(final)


def test_get_run_by_name_fits_80_columns(instance) -> None:
    started = instance.run_cli("run", "release", "-p", PROJECT, "--name", "release-2")
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 60
    while True:
        done = instance.run_cli("get", "wfr", "release-2", "-p", PROJECT,
                                "-o", "jsonpath={.status.overall.phase}")
        if done.stdout == "Failed":
            break
        assert time.monotonic() < deadline, done
        time.sleep(0.5)
    screen, _ = run_in_pane(instance, "get", "wfr", "release-2", "-p", PROJECT)
    assert "EXIT=0" in screen
    drawn = view_lines(screen)
    assert all(cell_len(line) <= 80 for line in drawn), "\n".join(drawn)
    assert drawn[0].split() == ["Name:", "release-2"]
    failed = next(line for line in drawn if f"✖ {LONG_B}" in line)
    assert "Failed" in failed and failed.endswith("…")
    piped = instance.run_cli("get", "wfr", "release-2", "-p", PROJECT).stdout
    assert any(LONG_B in line and line.endswith("(exit code 3)") for line in piped.splitlines())
