"""The Svn and Image resolvers against real servers: svnadmin/svnserve repositories and a
distribution registry on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import API, BACKENDS, NAMESPACE, outputs, shell_stage, workflow, workflow_run
from .test_resolvers import run_resolver

needs_svn = pytest.mark.skipif(
    any(subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode
        for tool in ("svn", "svnadmin", "svnserve")),
    reason="subversion is not installed (make system-deps)",
)


def svn(*args: str, cwd: Path | None = None, config: Path) -> str:
    return subprocess.run(
        ["svn", "--non-interactive", "--config-dir", str(config), *args],
        check=True, capture_output=True, text=True, cwd=cwd,
    ).stdout.strip()


@pytest.fixture
def svn_repo(tmp_path) -> Path:
    """r1: README "one"; r2: README "two" and NEWS."""
    root = tmp_path / "svnroot"
    root.mkdir()
    repo = root / "project"
    subprocess.run(["svnadmin", "create", str(repo)], check=True)
    config = tmp_path / "svnconfig"
    work = tmp_path / "wc"
    svn("checkout", "-q", repo.as_uri(), str(work), config=config)
    (work / "README").write_text("one\n")
    svn("add", "-q", "README", cwd=work, config=config)
    svn("commit", "-q", "-m", "first", "--username", "t", cwd=work, config=config)
    (work / "README").write_text("two\n")
    (work / "NEWS").write_text("news\n")
    svn("add", "-q", "NEWS", cwd=work, config=config)
    svn("commit", "-q", "-m", "second", "--username", "t", cwd=work, config=config)
    return repo


@needs_svn
def test_svn_pull_checks_out_the_head_and_reports_its_revision(svn_repo, tmp_path):
    result, termination = run_resolver(
        "svn.sh", "pull", tmp_path / "ws", SCM_URL=svn_repo.parent.as_uri(), SCM_REPO="project",
    )
    assert result.returncode == 0, result.stderr
    data = tmp_path / "ws" / "data"
    assert (data / "README").read_text() == "two\n" and (data / "NEWS").exists()
    assert termination == "LastCommitID:2\n"
    assert "LastCommitID:2" in result.stdout


@needs_svn
def test_svn_pull_checks_out_a_pinned_revision(svn_repo, tmp_path):
    result, termination = run_resolver(
        "svn.sh", "pull", tmp_path / "ws", SCM_URL=svn_repo.as_uri(), SCM_REVISION="1",
    )
    assert result.returncode == 0, result.stderr
    data = tmp_path / "ws" / "data"
    assert (data / "README").read_text() == "one\n" and not (data / "NEWS").exists()
    assert termination == "LastCommitID:1\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, within: float = 20.0) -> None:
    """Poll until something accepts on 127.0.0.1:`port`; fail if `process` exits first."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"{process.args[0]} did not listen on {port}")


@contextlib.contextmanager
def svnserve(root: Path) -> Iterator[str]:
    """`root` served read-only over svn:// on 127.0.0.1; yields the base URL."""
    port = free_port()
    server = subprocess.Popen(
        ["svnserve", "-d", "--foreground", "--read-only", "-r", str(root),
         "--listen-host", "127.0.0.1", "--listen-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, server)
        yield f"svn://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def svn_resource(name: str, url: str, revision: str) -> dict:
    return {
        "apiVersion": API, "kind": "Resource",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"type": "Svn", "parameters": [
            {"name": "SCM_URL", "value": url}, {"name": "SCM_REPO", "value": "project"},
            {"name": "SCM_REVISION", "value": revision},
        ]},
    }


@needs_svn
@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_stage_gets_an_svn_checkout_through_the_engine(svn_repo, env, backend):
    with svnserve(svn_repo.parent) as url:
        await env.apply(
            svn_resource("source", url, "1"),
            shell_stage("read", "", pod={
                "inputs": {"resources": [{"name": "source", "type": "Svn",
                                          "path": "/workspace/src"}]},
                "spec": {"containers": [{"name": "main", "image": "busybox", "command": [
                    "sh", "-c",
                    "echo readme:$(cat /workspace/src/README) > /cyclone/results/__result__",
                ]}]},
            }),
            workflow("wf", [{"name": "read"}]),
            workflow_run("r1", "wf"),
        )
        run = await env.wait_phase("r1", "Succeeded", within=60)
    assert outputs(run, "read") == {"LastCommitID": "1", "readme": "one"}
