"""The resolver scripts, run as the node agent runs them: `/entrypoint.sh pull|push`."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from cyclone.resolvers import RESOLVER_SCRIPTS, resolver_image_overlays, resolver_script

from .receiver import http_receiver


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """main: base, main-only; feature (from base): feature-only."""
    path = tmp_path / "origin"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "base").write_text("base\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "base")
    git(path, "checkout", "-q", "-b", "feature")
    (path / "feature-only").write_text("f\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "feature")
    git(path, "checkout", "-q", "main")
    (path / "main-only").write_text("m\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "main")
    return path


def run_resolver(script: str, action: str, workspace: Path, **env: str):
    termination = workspace.parent / "termination-log"
    termination.touch()
    result = subprocess.run(
        ["sh", str(resolver_script(script)), action], capture_output=True, text=True,
        env={"PATH": os.environ["PATH"], "WORKSPACE": str(workspace),
             "TERMINATION_LOG": str(termination), "HOME": str(workspace.parent), **env},
    )
    return result, termination.read_text()


def test_every_resolver_image_has_an_executable_script():
    overlays = resolver_image_overlays()
    assert set(overlays) == set(RESOLVER_SCRIPTS)
    for files in overlays.values():
        path = Path(files["/entrypoint.sh"])
        assert path.is_file() and os.access(path, os.X_OK)


def test_git_pull_checks_out_revision_and_reports_commit(repo, tmp_path):
    result, termination = run_resolver(
        "git.sh", "pull", tmp_path / "ws", SCM_URL=str(repo.parent), SCM_REPO="origin",
        SCM_REVISION="feature",
    )
    assert result.returncode == 0, result.stderr
    data = tmp_path / "ws" / "data"
    assert (data / "feature-only").exists() and not (data / "main-only").exists()
    assert termination == f"LastCommitID:{git(repo, 'rev-parse', 'feature')}\n"


def test_git_pull_merges_source_into_target(repo, tmp_path):
    result, termination = run_resolver(
        "git.sh", "pull", tmp_path / "ws", SCM_URL=f"file://{repo}", SCM_REVISION="feature:main",
    )
    assert result.returncode == 0, result.stderr
    data = tmp_path / "ws" / "data"
    assert (data / "feature-only").exists() and (data / "main-only").exists()
    merged = termination.strip().removeprefix("LastCommitID:")
    assert git(data, "rev-parse", "HEAD^1") == git(repo, "rev-parse", "main")
    assert git(data, "rev-parse", "HEAD^2") == git(repo, "rev-parse", "feature")
    assert merged == git(data, "rev-parse", "HEAD")


def test_git_pull_into_an_existing_mount_point_keeps_the_directory(repo, tmp_path):
    data = tmp_path / "ws" / "data"
    data.mkdir(parents=True)
    (data / "stale").write_text("old")
    result, _ = run_resolver("git.sh", "pull", tmp_path / "ws", SCM_URL=str(repo))
    assert result.returncode == 0, result.stderr
    assert not (data / "stale").exists() and (data / "main-only").exists()


def test_git_pull_of_unknown_revision_fails_clearly(repo, tmp_path):
    result, _ = run_resolver(
        "git.sh", "pull", tmp_path / "ws", SCM_URL=str(repo), SCM_REVISION="no-such-branch",
    )
    assert result.returncode != 0
    assert "no-such-branch" in result.stderr


def test_git_token_never_appears_in_output(repo, tmp_path):
    result, termination = run_resolver(
        "git.sh", "pull", tmp_path / "ws", SCM_URL=str(repo), SCM_AUTH="s3cr3t-token",
    )
    assert result.returncode == 0, result.stderr
    assert "s3cr3t-token" not in result.stdout + result.stderr + termination


def test_image_push_without_any_tool_names_the_missing_tools(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    for tool in ("dirname", "sed", "tail"):
        target = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                                text=True).stdout.strip()
        (empty / tool).symlink_to(target)
    result = subprocess.run(
        ["/bin/sh", str(resolver_script("image.sh")), "push"], capture_output=True, text=True,
        env={"PATH": str(empty), "WORKSPACE": str(tmp_path), "REPOSITORY": "team/app",
             "TAG": "1.0", "REGISTRY": "registry.local:5000"},
    )
    assert result.returncode != 0
    assert "skopeo" in result.stderr and "podman" in result.stderr and "docker" in result.stderr
    assert "registry.local:5000/team/app:1.0" in result.stderr


async def test_http_push_posts_a_tarball_of_the_data(tmp_path):
    data = tmp_path / "ws" / "data"
    (data / "reports").mkdir(parents=True)
    (data / "reports" / "junit.xml").write_text("<testsuite/>")
    async with http_receiver() as receiver:
        result = await asyncio.to_thread(
            run_resolver, "http.sh", "push", tmp_path / "ws",
            URL=receiver.url, ARTIFACT="reports.tgz", TOKEN="t0k",
        )
        await receiver.wait_for(1)
    assert result[0].returncode == 0, result[0].stderr
    [(request_line, body)] = receiver.raw
    assert request_line.startswith("POST /hook?name=reports.tgz")
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        member = archive.extractfile("./reports/junit.xml")
        assert member is not None and member.read() == b"<testsuite/>"


def test_http_push_without_url_fails(tmp_path):
    (tmp_path / "ws" / "data").mkdir(parents=True)
    result, _ = run_resolver("http.sh", "push", tmp_path / "ws")
    assert result.returncode != 0 and "URL is required" in result.stderr


def test_svn_pull_fails_clearly_without_svn(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run(
        ["/bin/sh", str(resolver_script("svn.sh")), "pull"], capture_output=True, text=True,
        env={"PATH": str(empty), "WORKSPACE": str(tmp_path / "ws"),
             "SCM_URL": "svn://example/repo"},
    )
    assert result.returncode != 0 and "svn is not installed" in result.stderr
