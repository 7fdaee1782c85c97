"""`cyclone up` as a service, run as real processes: one instance per data dir, one banner,
CLI contexts that a second instance never retargets, level- and format-controlled logs,
and foreseeable startup problems as one line."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from support.live_up import free_port

from cyclone.up_server import instance_context_name

INSTANCE_ENV = ("CYCLONE_SERVER", "CYCLONE_TENANT", "CYCLONE_TOKEN", "CYCLONE_CONTEXT")


def cli_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INSTANCE_ENV}
    env["CYCLONE_CONFIG"] = str(config)
    return env


def cyclone(*args: str, config: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclone.cli.main", *args],
                          env=cli_env(config), capture_output=True, text=True, timeout=timeout)


@dataclass
class UpProcess:
    process: subprocess.Popen
    data_dir: Path
    port: int
    banner: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> tuple[str, str]:
        """SIGTERM; the rest of its stdout and all of its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=30)
        return out, err


def start_up(data_dir: Path, config: Path, *args: str, port: int | None = None) -> UpProcess:
    """`cyclone up` (fake runtime) as a process; returns once its banner is complete."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cyclone.cli.main", "up", "--data-dir", str(data_dir),
         "--port", str(port), "--runtime", "fake", *args],
        env=cli_env(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not lines or not lines[-1].startswith("Next:"):
        line = process.stdout.readline()
        if not line or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate(timeout=10)
            raise AssertionError(f"cyclone up gave no banner: {lines!r} {err[-2000:]}")
        lines.append(line.rstrip("\n"))
    return UpProcess(process, data_dir, port, "\n".join(lines))


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    """The first instance on a fresh CLI config, logging JSON."""
    root = tmp_path_factory.mktemp("up-service")
    instance = start_up(root / "data", root / "config.yaml", "--log-format", "json")
    try:
        yield instance
    finally:
        instance.stop()


def config_of(first: UpProcess) -> Path:
    return first.data_dir.parent / "config.yaml"


def test_the_banner_names_the_url_token_file_context_and_next_command(first) -> None:
    name = instance_context_name(first.port)
    assert first.banner.count("Cyclone is ready") == 1
    assert first.banner.splitlines()[0] == f"Cyclone is ready at {first.url}"
    assert f"admin token:  {first.data_dir / 'admin-token'}" in first.banner
    assert f"CLI context:  {name} (current) in {config_of(first)}" in first.banner
    assert first.banner.splitlines()[-1].startswith("Next: cyclone apply -f ")
    assert httpx.get(f"{first.url}/healthcheck").status_code == 200
    listed = cyclone("get", "projects", config=config_of(first))
    assert listed.returncode == 0, listed.stderr


def test_a_second_up_on_the_same_data_dir_exits_at_once_naming_the_holder(first) -> None:
    started = time.monotonic()
    second = cyclone("up", "--data-dir", str(first.data_dir), "--port", str(free_port()),
                     "--runtime", "fake", config=config_of(first))
    assert time.monotonic() - started < 20
    assert second.returncode == 1
    assert second.stdout == ""
    assert second.stderr == (
        f"error: cyclone up: the data dir {first.data_dir} is in use by another cyclone up "
        f"(PID {first.process.pid}); stop it first or give another --data-dir\n")
    assert first.process.poll() is None
    assert httpx.get(f"{first.url}/healthcheck").status_code == 200


def test_a_refused_up_never_opens_the_cluster_file(tmp_path) -> None:
    data_dir = tmp_path / "held"
    data_dir.mkdir(mode=0o700)
    with (data_dir / "up.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        refused = cyclone("up", "--data-dir", str(data_dir), "--port", str(free_port()),
                          "--runtime", "fake", config=tmp_path / "config.yaml")
    assert refused.returncode == 1
    assert f"(PID {os.getpid()})" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert sorted(p.name for p in data_dir.iterdir()) == ["up.lock"]
    assert not (tmp_path / "config.yaml").exists()


def test_a_port_in_use_is_one_line_naming_the_port(first, tmp_path) -> None:
    taken = cyclone("up", "--data-dir", str(tmp_path / "other"), "--port", str(first.port),
                    "--runtime", "fake", config=tmp_path / "config.yaml")
    assert taken.returncode == 1
    assert taken.stderr == (f"error: cyclone up: port {first.port} on 127.0.0.1 is already in "
                            "use (another cyclone up? give another --port)\n")
    assert not (tmp_path / "other" / "cluster.db").exists()


def test_an_instance_on_another_port_does_not_retarget_the_cli(first, tmp_path) -> None:
    config = config_of(first)
    before = config.read_text()
    first_name = instance_context_name(first.port)
    port = free_port()
    other_name = instance_context_name(port)
    other = start_up(tmp_path / "other", config, "--log-level", "warning", port=port)
    try:
        assert (f"CLI context:  {other_name} in {config}, not current; switch to it with: "
                f"cyclone config use-context {other_name}") in other.banner
        settings = yaml.safe_load(config.read_text())
        assert settings["current-context"] == first_name
        assert [c["name"] for c in settings["contexts"]] == [first_name, other_name]
        project = tmp_path / "p.yaml"
        project.write_text("kind: Project\nmetadata: {name: only-on-other}\n")
        applied = cyclone("--context", other_name, "apply", "-f", str(project), config=config)
        assert applied.returncode == 0, applied.stderr
        on_current = cyclone("get", "projects", "-o", "name", config=config)
        assert "only-on-other" not in on_current.stdout
        switched = cyclone("config", "use-context", other_name, config=config)
        assert switched.returncode == 0, switched.stderr
        on_other = cyclone("get", "projects", "-o", "name", config=config)
        assert on_other.stdout.splitlines() == ["project/only-on-other"]
    finally:
        _, err = other.stop()
    assert [line for line in err.splitlines() if " INFO " in line] == []
    assert before != config.read_text()


def test_set_context_makes_a_restarted_instance_current(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"current-context": "elsewhere", "contexts": [
        {"name": "elsewhere", "server": "http://127.0.0.1:1", "token": "t"}]}))
    data_dir = tmp_path / "data"
    port = free_port()
    name = instance_context_name(port)
    plain = start_up(data_dir, config, port=port)
    plain.stop()
    assert yaml.safe_load(config.read_text())["current-context"] == "elsewhere"
    again = start_up(data_dir, config, "--set-context", port=port)
    try:
        assert f"CLI context:  {name} (current)" in again.banner
        assert yaml.safe_load(config.read_text())["current-context"] == name
        listed = cyclone("get", "projects", config=config)
        assert listed.returncode == 0, listed.stderr
    finally:
        again.stop()


RUN_PROJECT = """\
kind: Project
metadata: {name: up-service}
---
kind: Stage
metadata: {name: quick, labels: {project.cyclone.dev/name: up-service}}
spec:
  pod:
    spec:
      containers:
      - {image: alpine:3.20, command: [sh, -c, "true"]}
---
kind: Workflow
metadata: {name: once, labels: {project.cyclone.dev/name: up-service}}
spec:
  stages:
  - name: quick
"""


def test_a_run_is_executed_by_the_instance_and_logged_as_json_with_its_fields(
        first, tmp_path) -> None:
    """Last of the tests on `first`: it stops the instance to read all its log lines."""
    path = tmp_path / "run.yaml"
    path.write_text(RUN_PROJECT)
    config = config_of(first)
    target = ("--context", instance_context_name(first.port))
    applied = cyclone(*target, "apply", "-f", str(path), config=config)
    assert applied.returncode == 0, applied.stderr
    ran = cyclone(*target, "run", "once", "-p", "up-service", "--name", "once-1", "--watch",
                  "--interval", "0.2", config=config)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out, err = first.stop()
    records = [json.loads(line) for line in err.splitlines()]
    assert records, "no log lines"
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    serving = [r for r in records if r["logger"] == "cyclone.up" and r["message"] == "serving"]
    assert len(serving) == 1
    assert serving[0]["url"] == first.url
    assert serving[0]["data_dir"] == str(first.data_dir)
    runs = [(r["message"].split(":")[0], r["phase"]) for r in records if r.get("run") == "once-1"]
    assert runs == [("run cyclone-system/once-1 started", "Running"),
                    ("run cyclone-system/once-1 ended", "Succeeded")], records
    assert out.strip() == "Cyclone stopped"
    assert first.process.returncode == 0


@pytest.mark.parametrize(("setup", "args", "message"), [
    ("engine-json", (), "engine.json is not valid JSON: "),
    ("engine-field", (), "invalid engine configuration in "),
    ("data-dir-file", (), "cannot use the data dir "),
    ("none", ("--kubeconfig", "/nonexistent/kubeconfig"), "kubeconfig /nonexistent/kubeconfig"),
    ("kubeconfig-yaml", (), "kubeconfig "),
    ("none", ("--log-level", "loud"), "unknown log level 'loud' (one of: debug, info, "),
    ("none", ("--log-format", "xml"), "unknown log format 'xml' (one of: text, json)"),
])
def test_foreseeable_startup_problems_are_one_line(tmp_path, setup, args, message) -> None:
    data_dir = tmp_path / "data"
    if setup == "engine-json":
        data_dir.mkdir()
        (data_dir / "engine.json").write_text("{not json")
    elif setup == "engine-field":
        data_dir.mkdir()
        (data_dir / "engine.json").write_text('{"gc_delay_seconds": "soon"}')
    elif setup == "kubeconfig-yaml":
        (tmp_path / "kubeconfig").write_text("clusters: [unclosed\n")
        args = ("--kubeconfig", str(tmp_path / "kubeconfig"))
    elif setup == "data-dir-file":
        (tmp_path / "file").write_text("")
        data_dir = tmp_path / "file" / "data"
    result = cyclone("up", "--data-dir", str(data_dir), "--port", str(free_port()),
                     "--runtime", "fake", *args, config=tmp_path / "config.yaml")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cyclone up: ")
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not (data_dir / "cluster.db").exists()


def test_make_run_passes_its_arguments_to_cyclone_up() -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")
    root = Path(__file__).resolve().parents[2]
    outer_make = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
    env = {k: v for k, v in os.environ.items() if k not in outer_make}
    planned = subprocess.run(["make", "--no-print-directory", "-n", "run",
                              "ARGS=--port 7100 --log-format json"],
                             cwd=root, env=env, capture_output=True, text=True, timeout=30)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.splitlines()[-1] == ".venv/bin/cyclone up --port 7100 --log-format json"
