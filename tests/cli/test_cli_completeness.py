"""The CLI's own conventions against a live `cyclone up`: help with plain types,
`--version`, Ctrl-C as a notice, `retry` vs `rerun`, and bash completion."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import typer.main
from support.live_up import LiveUp, free_port, live_up
from typer.testing import CliRunner

from cyclone.cli.main import app

WORKFLOWS = """\
kind: Project
metadata: {name: cmpl}
---
kind: Stage
metadata: {name: quick, labels: {project.cyclone.dev/name: cmpl}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "date +stamp:%s%N > /cyclone/results/__result__"]
---
kind: Stage
metadata: {name: slow, labels: {project.cyclone.dev/name: cmpl}}
spec:
  pod:
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - image: alpine:3.20
        command: [sh, -c, "sleep 60"]
---
kind: Workflow
metadata: {name: quick, labels: {project.cyclone.dev/name: cmpl}}
spec:
  stages:
  - name: quick
---
kind: Workflow
metadata: {name: slow, labels: {project.cyclone.dev/name: cmpl}}
spec:
  stages:
  - name: slow
"""
PYTHON_TYPES = re.compile(r"<(str|bool|int|float)>|list\[")


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    data_dir = tmp_path_factory.mktemp("up")
    with live_up(data_dir) as up:
        path = data_dir / "cmpl.yaml"
        path.write_text(WORKFLOWS)
        applied = invoke("apply", "-f", str(path))
        assert applied.exit_code == 0, applied.output
        yield up


def command_paths(command, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, sub in (getattr(command, "commands", None) or {}).items():
        if not getattr(sub, "hidden", False):
            yield from command_paths(sub, (*prefix, name))


def test_help_of_every_command_names_plain_types() -> None:
    paths = list(command_paths(typer.main.get_command(app)))
    assert ("artifacts", "get") in paths and ("token", "create") in paths
    for path in paths:
        result = invoke(*path, "--help", env={"COLUMNS": "80"})
        assert result.exit_code == 0, (path, result.output)
        found = PYTHON_TYPES.search(result.output)
        assert found is None, f"`cyclone {' '.join(path)} --help` shows {found.group()}"
    help_text = invoke("run", "--help", env={"COLUMNS": "80"}).output
    assert re.search(r"--var\s+KEY=VALUE", help_text)
    assert re.search(r"--name\s+TEXT", help_text)
    assert re.search(r"--watch\s+Show the DAG", help_text)
    tenant_help = invoke("tenant", "create", "--help", env={"COLUMNS": "80"}).output
    assert re.search(r"--quota\s+RESOURCE=AMOUNT", tenant_help)


def test_usage_lines_name_arguments_in_capitals_as_kubectl_does() -> None:
    for path in command_paths(typer.main.get_command(app)):
        usage = invoke(*path, "--help", env={"COLUMNS": "120"}).output
        assert not re.search(r"\{[a-z_]+\}", usage), f"`cyclone {' '.join(path)} --help`"
    assert "Usage: cyclone get [OPTIONS] KIND [NAME]" in invoke("get", "--help").output
    assert "cyclone token revoke [OPTIONS] TENANT ID" in invoke("token", "revoke", "--help").output


def test_get_help_lists_every_kind_on_80_columns() -> None:
    result = invoke("get", "--help", env={"COLUMNS": "80"})
    assert "…" not in result.output
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    assert ("projects, resources, stages, workflows, workflowruns, workflowtriggers, "
            "templates, resourcetypes, tenants, integrations") in words


def test_version_flag_and_command_name_client_and_server(instance: LiveUp) -> None:
    installed = version("cyclone")
    flag = instance.run_cli("--version")
    assert (flag.returncode, flag.stdout, flag.stderr) == (0, f"cyclone {installed}\n", "")
    assert httpx.get(f"{instance.url}/version").json() == {"version": installed}
    both = invoke("version")
    assert both.exit_code == 0, both.output
    assert both.stdout == f"Client Version: {installed}\nServer Version: {installed}\n"
    closed = f"http://127.0.0.1:{free_port()}"
    alone = invoke("--server", closed, "version")
    assert alone.exit_code == 0
    assert alone.stdout == f"Client Version: {installed}\n"
    assert alone.stderr == (f"Server Version: unknown (cannot reach the Cyclone server at "
                            f"{closed}: is `cyclone up` running?)\n")


def _wait_phase(name: str, phase: str, within: float = 30) -> dict:
    deadline = time.monotonic() + within
    while True:
        got = invoke("get", "wfr", name, "-p", "cmpl", "-o", "json")
        run = json.loads(got.stdout) if got.exit_code == 0 else {}
        if ((run.get("status") or {}).get("overall") or {}).get("phase") == phase:
            return run
        assert time.monotonic() < deadline, f"{name} never {phase}: {run.get('status')}"
        time.sleep(0.2)


def test_ctrl_c_on_watch_is_a_notice_and_exit_130(instance: LiveUp) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cyclone.cli.main", "run", "slow", "-p", "cmpl", "--name",
         "slow-1", "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=instance.cli_env())
    try:
        _wait_phase("slow-1", "Running")
        time.sleep(0.5)
        watcher.send_signal(signal.SIGINT)
        stdout, stderr = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 130, stderr
    assert stderr.splitlines()[-1] == ("stopped watching workflowrun slow-1; it keeps running "
                                       "(`cyclone get wfr slow-1`, `cyclone stop slow-1`)")
    assert "error:" not in stderr and "Traceback" not in stderr
    assert "workflowrun/slow-1 created" in stdout
    assert invoke("stop", "slow-1", "--force").exit_code == 0


def test_retry_of_a_succeeded_run_refuses_and_rerun_runs_every_stage(instance) -> None:
    first = invoke("run", "quick", "-p", "cmpl", "--name", "quick-1", "--watch",
                   "--interval", "0.2")
    assert first.exit_code == 0, first.output
    stamp = _wait_phase("quick-1", "Succeeded")["status"]["stages"]["quick"]["outputs"]

    retry = invoke("retry", "quick-1")
    assert retry.exit_code == 1
    assert retry.stderr == ("error: run quick-1 succeeded: nothing to retry; "
                            "use `cyclone rerun quick-1`\n")
    assert retry.stdout == ""

    rerun = invoke("rerun", "quick-1", "--watch", "--interval", "0.2")
    assert rerun.exit_code == 0, rerun.output
    created = rerun.stdout.splitlines()[0]
    name = re.fullmatch(r"workflowrun/(\S+) created \(rerun of quick-1\)", created).group(1)
    assert rerun.stdout.rstrip().endswith(f"workflowrun/{name} Succeeded")
    again = _wait_phase(name, "Succeeded")
    assert "retryOf" not in again["spec"]
    assert again["status"]["stages"]["quick"]["outputs"] != stamp


def test_bash_completion_script_completes_cyclone_commands(instance: LiveUp) -> None:
    cyclone = Path(sys.executable).parent / "cyclone"
    bash = shutil.which("bash")
    if bash is None or not cyclone.exists():
        pytest.skip("needs bash and the installed cyclone script")
    shown = subprocess.run([str(cyclone), "--show-completion", "bash"], capture_output=True,
                           text=True, env=instance.cli_env(), timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert "complete -o default -F _cyclone_completion cyclone" in shown.stdout
    completed = subprocess.run(
        [bash, "-c", 'eval "$(cyclone --show-completion bash)"; '
                     "COMP_WORDS=(cyclone art); COMP_CWORD=1; _cyclone_completion cyclone; "
                     'printf "%s\\n" "${COMPREPLY[@]}"'],
        capture_output=True, text=True, timeout=30,
        env={**instance.cli_env(), "PATH": f"{cyclone.parent}:/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["artifacts"]


def test_ctrl_c_in_any_command_is_a_notice_and_exit_130(instance: LiveUp) -> None:
    """`cyclone version` waiting on a server that never answers, interrupted."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(30)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        waiting = subprocess.Popen(
            [sys.executable, "-m", "cyclone.cli.main", "--server", url, "version"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=instance.cli_env())
        try:
            connection, _ = silent.accept()
            with connection:
                time.sleep(0.3)
                waiting.send_signal(signal.SIGINT)
                stdout, stderr = waiting.communicate(timeout=20)
        finally:
            if waiting.poll() is None:
                waiting.kill()
    assert waiting.returncode == 130, stderr
    assert stdout.startswith("Client Version: ")
    assert stderr.strip() == "interrupted"
