"""`cyclone logs` and `cyclone stop` against a live `cyclone up` (real processes, pipes).

Stored logs come stage by stage in the order the stages started, under the header format
`-f` prints too; `-f` says on stderr what it waits for and fails when the stage it follows
did not succeed; `stop` gives a stage's TERM trap its grace period, `stop --force` does not.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from support.live_up import LiveUp, cli, cli_ok, live_up

from cyclone.api import keys
from cyclone.kube import kinds

NAMESPACE = keys.tenant_namespace(keys.DEFAULT_TENANT)
PROJECT = "logs-live"

OBJECTS = f"""\
kind: Project
metadata: {{name: {PROJECT}}}
---
kind: Stage
metadata: {{name: zeta, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - {{name: main, image: alpine:3.20, command: [sh, -c, "echo zeta line"]}}
---
kind: Stage
metadata: {{name: alpha, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - {{name: main, image: alpine:3.20, command: [sh, -c, "echo alpha line"]}}
---
kind: Stage
metadata: {{name: slow-fail, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - {{name: main, image: alpine:3.20, command: [sh, -c, "sleep 2; exit 3"]}}
---
kind: Stage
metadata: {{name: trapper, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - name: main
        image: alpine:3.20
        command: [sh, -c, "trap 'echo got TERM; exit 0' TERM; echo started;
                           while true; do sleep 0.1; done"]
---
kind: Workflow
metadata: {{name: ordered, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages:
  - name: zeta
  - {{name: alpha, depends: [zeta]}}
---
kind: Workflow
metadata: {{name: doomed, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages:
  - name: slow-fail
  - {{name: alpha, depends: [slow-fail]}}
---
kind: Workflow
metadata: {{name: trapping, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages:
  - name: trapper
"""


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    with live_up(tmp_path_factory.mktemp("up")) as up:
        objects = up.data_dir / "logs-live.yaml"
        objects.write_text(OBJECTS)
        applied = up.run_cli("apply", "-f", str(objects))
        assert applied.returncode == 0, applied.stderr
        yield up


def until(probe: Callable[[], object], within: float = 60, what: str = "") -> object:
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)


def run_object(instance: LiveUp, run: str) -> dict:
    return instance.call(instance.cluster.get(kinds.WORKFLOW_RUN, run, NAMESPACE))


def phase_of(instance: LiveUp, run: str) -> str | None:
    return ((run_object(instance, run).get("status") or {}).get("overall") or {}).get("phase")


def stored_state(instance: LiveUp, run: str, stage: str) -> dict:
    """The log store's record of a stage's `main` log (whether it is complete)."""
    for path in (instance.data_dir / "logs").rglob(f"{run}/*/{stage}/main.log.state"):
        return json.loads(path.read_text())
    return {}


def start(instance: LiveUp, workflow: str, run: str) -> None:
    started = instance.run_cli("run", workflow, "-p", PROJECT, "--name", run)
    assert started.returncode == 0, started.stderr


def test_stored_logs_come_in_start_order_under_the_header_follow_prints(instance) -> None:
    start(instance, "ordered", "ordered-1")
    until(lambda: phase_of(instance, "ordered-1") == "Succeeded", what="run succeeded")
    until(lambda: stored_state(instance, "ordered-1", "alpha").get("complete"),
          what="alpha's log stored")
    stored = instance.run_cli("logs", "ordered-1")
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout == "==> zeta <==\nzeta line\n==> alpha <==\nalpha line\n"
    followed = instance.run_cli("logs", "ordered-1", "-f")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == stored.stdout


def test_follow_says_what_it_waits_for_and_fails_when_the_stage_never_started(
        instance) -> None:
    cli_ok(instance, "run", "doomed", "-p", PROJECT, "--name", "doomed-1")
    followed = cli(instance, "logs", "doomed-1", "--stage", "alpha", "-f")
    assert followed.returncode == 1, followed.stderr
    assert followed.stdout == ""
    *waiting, error = followed.stderr.splitlines()
    assert waiting and all(re.fullmatch(
        r"waiting for stage alpha to start \(run is \w+; 1 stage before it\)", line)
        for line in waiting), waiting
    assert error == "error: stage alpha never started: the run ended Failed"


def test_follow_of_a_failed_stage_prints_its_log_and_exits_non_zero(instance) -> None:
    start(instance, "doomed", "doomed-2")
    until(lambda: phase_of(instance, "doomed-2") == "Failed", what="run failed")
    followed = instance.run_cli("logs", "doomed-2", "--stage", "slow-fail", "-f")
    assert followed.returncode == 1
    assert followed.stderr.startswith("error: stage slow-fail Failed"), followed.stderr
    assert len(followed.stderr.splitlines()) == 1


def wait_started(instance: LiveUp, run: str) -> None:
    until(lambda: "started" in instance.run_cli("logs", run, "-s", "trapper").stdout,
          what="trapper started")


def test_stop_gives_the_stage_its_grace_so_its_term_trap_is_logged(instance) -> None:
    start(instance, "trapping", "trapping-1")
    wait_started(instance, "trapping-1")
    stopped = instance.run_cli("stop", "trapping-1")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == "workflowrun/trapping-1 stopped\n"
    until(lambda: phase_of(instance, "trapping-1") == "Cancelled", what="run cancelled")
    until(lambda: stored_state(instance, "trapping-1", "trapper").get("complete"),
          what="trapper's log stored")
    logs = instance.run_cli("logs", "trapping-1", "-s", "trapper")
    assert logs.stdout == "started\ngot TERM\n"


def test_a_forced_stop_kills_the_stage_at_once_without_its_trap(instance) -> None:
    start(instance, "trapping", "trapping-2")
    wait_started(instance, "trapping-2")
    pod = run_object(instance, "trapping-2")["status"]["stages"]["trapper"]["pod"]["name"]
    stopped = instance.run_cli("stop", "trapping-2", "--force")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == "workflowrun/trapping-2 stopped (forced)\n"
    until(lambda: phase_of(instance, "trapping-2") == "Cancelled", what="run cancelled")
    pods = instance.call(instance.cluster.list(kinds.POD, NAMESPACE)).items
    assert pod not in {p["metadata"]["name"] for p in pods}
    until(lambda: stored_state(instance, "trapping-2", "trapper").get("complete"),
          what="trapper's log stored")
    logs = instance.run_cli("logs", "trapping-2", "-s", "trapper")
    assert logs.stdout == "started\n"


def test_stop_help_offers_force(instance) -> None:
    shown = instance.run_cli("stop", "--help")
    assert shown.returncode == 0
    assert "--force" in shown.stdout




STAMPED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (.*)")


def stored_run(instance: LiveUp, run: str) -> None:
    start(instance, "ordered", run)
    until(lambda: phase_of(instance, run) == "Succeeded", what="run succeeded")
    until(lambda: stored_state(instance, run, "alpha").get("complete"),
          what="alpha's log stored")


def stamped_lines(output: str) -> list[tuple[datetime, str]]:
    found = []
    for line in output.splitlines():
        if line.startswith("==> "):
            continue
        match = STAMPED.fullmatch(line)
        assert match, line
        found.append((datetime.fromisoformat(match[1].replace("Z", "+00:00")), match[2]))
    return found


def test_timestamps_prefix_each_line_with_the_time_it_was_stored(instance) -> None:
    before = datetime.now(UTC)
    stored_run(instance, "ordered-2")
    shown = instance.run_cli("logs", "ordered-2", "--timestamps")
    assert shown.returncode == 0, shown.stderr
    lines = stamped_lines(shown.stdout)
    assert [text for _, text in lines] == ["zeta line", "alpha line"]
    assert all(before <= moment <= datetime.now(UTC) for moment, _ in lines)
    assert shown.stdout.startswith("==> zeta <==\n")
    followed = instance.run_cli("logs", "ordered-2", "-s", "alpha", "-f", "--timestamps")
    assert followed.returncode == 0, followed.stderr
    assert stamped_lines(followed.stdout) == [lines[1]]
    plain = instance.run_cli("logs", "ordered-2")
    assert plain.stdout == "==> zeta <==\nzeta line\n==> alpha <==\nalpha line\n"


def test_since_leaves_out_the_lines_stored_before(instance) -> None:
    stored_run(instance, "ordered-3")
    lines = stamped_lines(instance.run_cli("logs", "ordered-3", "--timestamps").stdout)
    last_time, last_line = max(lines)
    assert min(lines)[0] < last_time
    since_last = instance.run_cli("logs", "ordered-3", "--since-time",
                                  last_time.isoformat().replace("+00:00", "Z"))
    assert since_last.returncode == 0, since_last.stderr
    assert since_last.stdout == f"==> {last_line.split()[0]} <==\n{last_line}\n"
    assert instance.run_cli("logs", "ordered-3", "--since", "1h").stdout == (
        "==> zeta <==\nzeta line\n==> alpha <==\nalpha line\n")
    time.sleep(max(0.0, 1.1 - (datetime.now(UTC) - last_time).total_seconds()))
    recent = instance.run_cli("logs", "ordered-3", "-s", "alpha", "--since", "1s")
    assert (recent.returncode, recent.stdout) == (0, "")
    followed = instance.run_cli("logs", "ordered-3", "-s", "alpha", "-f", "--since", "1s")
    assert (followed.returncode, followed.stdout) == (0, "")


def test_a_bad_since_is_one_error_line(instance) -> None:
    stored_run(instance, "ordered-4")
    bad_time = instance.run_cli("logs", "ordered-4", "--since-time", "yesterday")
    assert bad_time.returncode == 1
    assert bad_time.stderr == "error: sinceTime 'yesterday' is not an RFC 3339 time\n"
    bad_duration = instance.run_cli("logs", "ordered-4", "--since", "10 parsecs")
    assert bad_duration.returncode == 1
    assert bad_duration.stderr.startswith("error: --since: invalid duration")
    assert len(bad_duration.stderr.splitlines()) == 1
    both = instance.run_cli("logs", "ordered-4", "--since", "1m", "--since-time",
                            "2026-01-01T00:00:00Z")
    assert both.stderr == "error: give at most one of --since and --since-time\n"


def test_follow_of_a_stage_stopped_while_it_runs_exits_non_zero_with_the_reason(
        instance) -> None:
    start(instance, "trapping", "trapping-3")
    wait_started(instance, "trapping-3")
    follower = subprocess.Popen(
        [sys.executable, "-m", "cyclone.cli.main", "logs", "trapping-3", "-s", "trapper", "-f"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=instance.cli_env())
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "started\n"
        assert instance.run_cli("stop", "trapping-3").returncode == 0
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert out == "got TERM\n"
    assert follower.returncode == 1
    assert err == "error: stage trapper Cancelled: stopped by a user\n"


def test_follow_of_a_stage_the_run_does_not_have_names_its_stages(instance) -> None:
    start(instance, "ordered", "ordered-5")
    followed = instance.run_cli("logs", "ordered-5", "-s", "beta", "-f")
    assert followed.returncode == 1
    assert followed.stderr == (
        "error: workflowrun ordered-5 has no stage 'beta' (stages: zeta, alpha)\n")
