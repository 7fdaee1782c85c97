from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.test_objects_cli import MANIFESTS, write
from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.server.logs import LogRef, LogStore, RunRef

NS = "cyclone-system"


@pytest.fixture
def demo(cyclone, tmp_path: Path) -> None:
    result = cyclone("apply", "-f", write(tmp_path, MANIFESTS))
    assert result.exit_code == 0, result.output


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stage_status(phase: str, reason: str = "", message: str = "") -> dict:
    return {"status": {"phase": phase, "reason": reason, "message": message,
                       "startTime": now(), "lastTransitionTime": now()}}


def set_status(live_server, run: str, stages: dict, overall: str) -> None:
    live_server.call(live_server.cluster.patch(
        kinds.WORKFLOW_RUN, run, {"status": {"stages": stages, "overall": {"phase": overall}}},
        NS, subresource="status"))


def runs_of(live_server) -> list[dict]:
    return live_server.call(live_server.cluster.list(kinds.WORKFLOW_RUN, NS)).items


class Fetches:
    """Counts the states of the run that `cyclone run --watch` receives from its stream."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def counting(self, states):
        try:
            for run in states:
                with self._changed:
                    self.count += 1
                    self._changed.notify_all()
                yield run
        finally:
            states.close()

    def wait_for(self, count: int, within: float = 60.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.count >= count, within), \
                f"the watcher read the run {self.count} times, never {count}"


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> Fetches:
    import cyclone.cli.runs

    counted = Fetches()
    watch_run = cyclone.cli.runs.watch_run
    monkeypatch.setattr(cyclone.cli.runs, "watch_run",
                        lambda states, *args, **kwargs: watch_run(counted.counting(states),
                                                                  *args, **kwargs))
    return counted


def progress_in_background(live_server, fetches: Fetches,
                           steps: list[tuple[dict, str]]) -> threading.Thread:
    """Play `steps` of (stages, overall phase) on the first run once it exists, each once
    the watcher has received the run as the step before left it."""

    existing = {r["metadata"]["name"] for r in runs_of(live_server)}

    def new_runs() -> list[str]:
        return [r["metadata"]["name"] for r in runs_of(live_server)
                if r["metadata"]["name"] not in existing]

    def play() -> None:
        deadline = time.monotonic() + 60
        while not new_runs() and time.monotonic() < deadline:
            time.sleep(0.02)
        name = new_runs()[0]
        for received, (stages, overall) in enumerate(steps, start=1):
            fetches.wait_for(received)
            set_status(live_server, name, stages, overall)

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


def test_run_creates_a_run_with_variables_and_parameters(cyclone, demo, live_server) -> None:
    result = cyclone("run", "ci", "--project", "demo", "--name", "ci-manual",
                     "--var", "TAG=v1", "--param", "build.cmd=make all")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "workflowrun/ci-manual created"
    run = live_server.call(live_server.cluster.get(kinds.WORKFLOW_RUN, "ci-manual", NS))
    assert run["spec"]["workflowRef"]["name"] == "ci"
    assert run["spec"]["globalVariables"] == [{"name": "TAG", "value": "v1"}]
    assert run["spec"]["stages"] == [
        {"name": "build", "parameters": [{"name": "cmd", "value": "make all"}]}]
    assert run["metadata"]["labels"][keys.LABEL_WORKFLOW] == "ci"


def test_watch_follows_the_dag_and_exits_zero_on_success(cyclone, demo, live_server,
                                                         fetches) -> None:
    player = progress_in_background(live_server, fetches, [
        ({"build": stage_status("Running")}, "Running"),
        ({"build": stage_status("Succeeded", "PodSucceed"),
          "test": stage_status("Running")}, "Running"),
        ({"build": stage_status("Succeeded", "PodSucceed"),
          "test": stage_status("Succeeded", "PodSucceed")}, "Succeeded"),
    ])
    result = cyclone("run", "ci", "--project", "demo", "--watch", "--interval", "0.05")
    player.join(60)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "build: Running" in out
    assert out.index("build: Running") < out.index("build: Succeeded (PodSucceed)") \
        < out.index("test: Succeeded (PodSucceed)")
    assert out.rstrip().endswith("Succeeded")
    assert "✔ build" in out and "✔ test" in out


def test_watch_exits_non_zero_with_the_failing_stage_reason(cyclone, demo, live_server,
                                                            fetches) -> None:
    player = progress_in_background(live_server, fetches, [
        ({"build": stage_status("Running")}, "Running"),
        ({"build": stage_status("Failed", "PodFailed", "exit code 2")}, "Failed"),
    ])
    result = cyclone("run", "ci", "--project", "demo", "--watch", "--interval", "0.05")
    player.join(60)
    assert result.exit_code == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert error_lines[0].endswith("Failed: stage build failed: PodFailed: exit code 2")
    assert "Traceback" not in result.output


def test_stop_pause_resume_set_the_run_flags(cyclone, demo, live_server) -> None:
    assert cyclone("run", "ci", "-p", "demo", "--name", "ci-1").exit_code == 0
    for action, field, value in (("pause", "paused", True), ("resume", "paused", False),
                                 ("stop", "stopped", True)):
        result = cyclone(action, "ci-1")
        assert result.exit_code == 0, result.output
        run = live_server.call(live_server.cluster.get(kinds.WORKFLOW_RUN, "ci-1", NS))
        assert run["spec"][field] is value


def test_retry_starts_a_run_that_reuses_the_old_one(cyclone, demo, live_server) -> None:
    assert cyclone("run", "ci", "-p", "demo", "--name", "ci-2").exit_code == 0
    set_status(live_server, "ci-2", {"build": stage_status("Failed", "PodFailed")}, "Failed")
    result = cyclone("retry", "ci-2")
    assert result.exit_code == 0, result.output
    new_name = result.stdout.split()[0].removeprefix("workflowrun/")
    run = live_server.call(live_server.cluster.get(kinds.WORKFLOW_RUN, new_name, NS))
    assert run["spec"]["retryOf"] == "ci-2"


def stored_ref(live_server, run: str) -> RunRef:
    """Where the server stores the run's data: under its uid."""
    found = live_server.call(live_server.cluster.get(kinds.WORKFLOW_RUN, run, NS))
    return RunRef("system", "demo", "ci", run, uid=found["metadata"]["uid"])


def test_logs_prints_stored_logs_of_a_stage_or_all(cyclone, demo, live_server) -> None:
    assert cyclone("run", "ci", "-p", "demo", "--name", "ci-3").exit_code == 0
    store = LogStore(live_server.data_dir / "logs")
    run_ref = stored_ref(live_server, "ci-3")
    for stage, text in (("build", b"compiled\n"), ("test", b"all green\n")):
        writer = store.writer(LogRef(run_ref, stage, "c0"))
        writer.append(text, len(text))
        writer.finish()
    one = cyclone("logs", "ci-3", "--stage", "build")
    assert one.exit_code == 0, one.output
    assert one.stdout == "compiled\n"
    everything = cyclone("logs", "ci-3")
    assert everything.stdout == "==> build <==\ncompiled\n==> test <==\nall green\n"


def test_logs_follow_streams_until_the_stage_ends(cyclone, demo, live_server,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from cyclone.cli.client import CycloneClient

    received = threading.Event()
    server_events = CycloneClient.server_events

    def noting(self, path: str, *args, **kwargs):
        for event in server_events(self, path, *args, **kwargs):
            if event.data == "step 1":
                received.set()
            yield event

    monkeypatch.setattr(CycloneClient, "server_events", noting)
    assert cyclone("run", "ci", "-p", "demo", "--name", "ci-4").exit_code == 0
    set_status(live_server, "ci-4", {"build": stage_status("Running")}, "Running")
    store = LogStore(live_server.data_dir / "logs")
    writer = store.writer(LogRef(stored_ref(live_server, "ci-4"), "build", "c0"))
    writer.append(b"step 1\n", 7)

    def finish_later() -> None:
        if not received.wait(60):
            writer.append(b"the follower never received the first line\n", 0)
        writer.append(b"step 2\n", 7)
        set_status(live_server, "ci-4", {"build": stage_status("Succeeded")}, "Succeeded")
        writer.finish()

    thread = threading.Thread(target=finish_later, daemon=True)
    thread.start()
    result = cyclone("logs", "ci-4", "--stage", "build", "-f")
    thread.join(60)
    assert result.exit_code == 0, result.output
    assert result.stdout == "step 1\nstep 2\n"


def test_logs_follow_ends_for_a_stage_that_will_never_run(cyclone, demo, live_server) -> None:
    assert cyclone("run", "ci", "-p", "demo", "--name", "ci-5").exit_code == 0
    set_status(live_server, "ci-5", {"build": stage_status("Failed", "PodFailed")}, "Failed")
    store = LogStore(live_server.data_dir / "logs")
    writer = store.writer(LogRef(stored_ref(live_server, "ci-5"), "build", "c0"))
    writer.append(b"boom\n", 5)
    never_run = cyclone("logs", "ci-5", "--stage", "test", "-f")
    assert never_run.exit_code == 1, never_run.output
    assert never_run.stdout == ""
    assert never_run.stderr == "error: stage test never started: the run ended Failed\n"
    every_stage = cyclone("logs", "ci-5", "-f")
    assert every_stage.exit_code == 1, every_stage.output
    assert every_stage.stdout == "==> build <==\nboom\n"
    assert every_stage.stderr == "error: stage build Failed: PodFailed\n"


def test_logs_of_an_unknown_run_is_an_error_line(cyclone, demo) -> None:
    result = cyclone("logs", "nope", "-f", "-p", "demo", "-w", "ci")
    assert result.exit_code == 1
    assert result.stderr == "error: workflowrun 'nope' not found\n"
