"""The Svn and Image resolvers against real servers: svnadmin/svnserve repositories and a
distribution registry on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import API, BACKENDS, NAMESPACE, outputs, shell_stage, workflow, workflow_run
from .test_resolvers import run_resolver

needs_svn = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("svn", "svnadmin", "svnserve")),
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


needs_registry = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("skopeo", "docker-registry")),
    reason="skopeo or docker-registry is not installed (make system-deps)",
)


@contextlib.contextmanager
def docker_registry(tmp_path: Path) -> Iterator[str]:
    """A distribution registry on 127.0.0.1 (plain HTTP, storage under `tmp_path`);
    yields its host:port."""
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: test-only\n"
    )
    server = subprocess.Popen(["docker-registry", "serve", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, server)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_docker_archive(path: Path, tag: str) -> str:
    """A one-layer image in `docker save` layout at `path`; returns its config digest."""
    layer = _tar({"hello.txt": b"hello\n"})
    diff_id = f"sha256:{hashlib.sha256(layer).hexdigest()}"
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    layer_path = f"{diff_id.removeprefix('sha256:')}/layer.tar"
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": [tag], "Layers": [layer_path]}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_tar({"manifest.json": json.dumps(manifest).encode(),
                           f"{config_hex}.json": config, layer_path: layer}))
    return f"sha256:{config_hex}"


def registry_get(url: str, accept: str = "application/json") -> dict:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@needs_registry
def test_image_push_sends_the_archive_to_a_plain_http_registry_when_insecure(tmp_path):
    workspace = tmp_path / "ws"
    config_digest = write_docker_archive(workspace / "data" / "image.tar", "team/app:1.0")
    with docker_registry(tmp_path) as registry:
        result, _ = run_resolver("image.sh", "push", workspace, REGISTRY=registry,
                                 REPOSITORY="team/app", TAG="1.0", INSECURE="true")
        assert result.returncode == 0, result.stderr
        assert f"pushed {registry}/team/app:1.0" in result.stdout
        tags = registry_get(f"http://{registry}/v2/team/app/tags/list")
        manifest = registry_get(f"http://{registry}/v2/team/app/manifests/1.0",
                                "application/vnd.docker.distribution.manifest.v2+json")
    assert tags == {"name": "team/app", "tags": ["1.0"]}
    assert manifest["config"]["digest"] == config_digest
    assert len(manifest["layers"]) == 1


@needs_registry
def test_image_push_to_a_plain_http_registry_fails_unless_insecure(tmp_path):
    workspace = tmp_path / "ws"
    write_docker_archive(workspace / "data" / "image.tar", "team/app:1.0")
    with docker_registry(tmp_path) as registry:
        result, _ = run_resolver("image.sh", "push", workspace, REGISTRY=registry,
                                 REPOSITORY="team/app", TAG="1.0")
        with pytest.raises(urllib.error.HTTPError) as missing:
            registry_get(f"http://{registry}/v2/team/app/tags/list")
    assert result.returncode != 0
    assert f"could not push {registry}/team/app:1.0" in result.stderr
    assert missing.value.code == 404
