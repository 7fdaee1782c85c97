"""`cyclone artifacts ls|get|put` against a live `cyclone up`, within one tenant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.live_up import LiveUp, live_up
from typer.testing import CliRunner

from cyclone.cli.main import app

WORKFLOWS = """\
kind: Project
metadata: {name: arts}
---
kind: Stage
metadata: {name: pack, labels: {project.cyclone.dev/name: arts}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo packed"]
---
kind: Workflow
metadata: {name: build, labels: {project.cyclone.dev/name: arts}}
spec:
  stages:
  - name: pack
"""


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    data_dir = tmp_path_factory.mktemp("up")
    with live_up(data_dir) as up:
        (data_dir / "arts.yaml").write_text(WORKFLOWS)
        for args in (("apply", "-f", str(data_dir / "arts.yaml")),
                     ("run", "build", "-p", "arts", "--name", "arts-1", "--watch",
                      "--interval", "0.2"),
                     ("tenant", "create", "mallory")):
            done = invoke(*args)
            assert done.exit_code == 0, done.output
        yield up


@pytest.fixture(scope="module")
def payload(instance: LiveUp) -> bytes:
    """A 300 KiB artifact of the run, uploaded once."""
    data = os.urandom(300 * 1024)
    source = instance.data_dir / "report.tgz"
    source.write_bytes(data)
    put = instance.run_cli("artifacts", "put", "arts-1", str(source), "--stage", "pack")
    assert put.returncode == 0, put.stderr
    assert put.stdout == "artifact/report.tgz uploaded (300K)\n"
    assert put.stderr == ""
    return data


def test_ls_lists_what_was_put(instance: LiveUp, payload: bytes) -> None:
    table = invoke("artifacts", "ls", "arts-1")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["NAME", "STAGE", "SIZE", "AGE", "EXPIRES"]
    assert rows[0].split()[:3] == ["report.tgz", "pack", "300K"]
    items = json.loads(invoke("artifacts", "ls", "arts-1", "-o", "json").stdout)
    assert [(i["name"], i["size"], i["stage"]) for i in items] == [
        ("report.tgz", len(payload), "pack")]
    assert invoke("artifacts", "ls", "arts-1", "-o", "name").stdout == "report.tgz\n"
    sizes = invoke("artifacts", "ls", "arts-1", "-o", "jsonpath={.items[*].size}")
    assert sizes.stdout == str(len(payload))
    unknown = invoke("artifacts", "ls", "arts-1", "-o", "csv")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: unknown output format")


def test_get_writes_a_file_a_directory_or_stdout(instance, payload, tmp_path) -> None:
    into_dir = invoke("artifacts", "get", "arts-1", "report.tgz", "-o", str(tmp_path))
    assert into_dir.exit_code == 0, into_dir.output
    assert (tmp_path / "report.tgz").read_bytes() == payload
    assert into_dir.stderr == f"artifact/report.tgz saved to {tmp_path / 'report.tgz'} (300K)\n"
    named = tmp_path / "copy.tgz"
    assert invoke("artifacts", "get", "arts-1", "report.tgz", "-o", str(named)).exit_code == 0
    assert named.read_bytes() == payload
    piped = subprocess.run(
        [sys.executable, "-m", "cyclone.cli.main", "artifacts", "get", "arts-1", "report.tgz",
         "-o", "-"], capture_output=True, env=instance.cli_env(), timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == payload
    assert piped.stderr == b""


def test_get_of_a_missing_artifact_leaves_no_file(instance, payload, tmp_path) -> None:
    missing = invoke("artifacts", "get", "arts-1", "nope.tgz", "-o", str(tmp_path))
    assert missing.exit_code == 1
    assert missing.stderr == "error: artifact 'nope.tgz' not found\n"
    assert list(tmp_path.iterdir()) == []


def test_put_of_an_unreadable_file_is_one_line(instance: LiveUp, tmp_path: Path) -> None:
    result = invoke("artifacts", "put", "arts-1", str(tmp_path / "absent.tgz"))
    assert result.exit_code == 1
    assert result.stderr == (f"error: cannot read {tmp_path / 'absent.tgz'}: "
                             "No such file or directory\n")


def test_another_tenant_cannot_list_read_or_write_the_artifacts(instance, payload,
                                                                 tmp_path) -> None:
    token = invoke("token", "create", "mallory").stdout.strip()
    scoped = ("-p", "arts", "-w", "build")
    for tenant in ("mallory", "system"):
        attempts = [("artifacts", "ls", "arts-1", *scoped),
                    ("artifacts", "get", "arts-1", "report.tgz", "-o", str(tmp_path), *scoped),
                    ("artifacts", "put", "arts-1", str(instance.data_dir / "report.tgz"),
                     "--name", "evil.tgz", *scoped)]
        for args in attempts:
            result = invoke("--token", token, "--tenant", tenant, *args)
            assert result.exit_code == 1, (tenant, args, result.output)
            assert result.stdout == ""
            assert result.stderr.startswith("error: ") and "not found" in result.stderr
            assert len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    names = json.loads(invoke("artifacts", "ls", "arts-1", "-o", "json").stdout)
    assert "evil.tgz" not in [i["name"] for i in names]


def _with_terminal_stderr(instance: LiveUp, *args: str) -> tuple[int, str, str]:
    """`cyclone ARGS…` with stderr on a pseudo-terminal of 80 columns, stdout on a pipe:
    (status, stdout, what the terminal got)."""
    import fcntl
    import pty
    import struct
    import termios

    main_fd, terminal_fd = pty.openpty()
    fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "cyclone.cli.main", *args], stdout=subprocess.PIPE,
        stderr=terminal_fd, env={**instance.cli_env(), "TERM": "xterm"})
    os.close(terminal_fd)
    seen = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(main_fd)
    stdout = process.stdout.read() if process.stdout else b""
    process.wait(60)
    return process.returncode, stdout.decode(), seen.decode(errors="replace")


def test_large_transfers_show_progress_on_a_terminal_only(instance, tmp_path) -> None:
    big = tmp_path / "big.tgz"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    status, stdout, terminal = _with_terminal_stderr(instance, "artifacts", "put", "arts-1",
                                                     str(big))
    assert status == 0, terminal
    assert stdout == "artifact/big.tgz uploaded (6.0M)\n"
    assert "big.tgz" in terminal and "MB" in terminal
    status, _, terminal = _with_terminal_stderr(
        instance, "artifacts", "get", "arts-1", "big.tgz", "-o", str(tmp_path / "copy.tgz"))
    assert status == 0, terminal
    assert "MB" in terminal
    assert (tmp_path / "copy.tgz").read_bytes() == big.read_bytes()
    piped = instance.run_cli("artifacts", "get", "arts-1", "big.tgz", "-o",
                             str(tmp_path / "again.tgz"))
    assert piped.stderr == f"artifact/big.tgz saved to {tmp_path / 'again.tgz'} (6.0M)\n"
