"""A tenant's stage, run by `cyclone up`'s host runtime, reaches nothing that is not its own,
while a normal build (a Git checkout, results, an artifact) still works."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from engine.gates import serve_git_repository

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox drops to another uid")


def attempt(name: str, command: str) -> str:
    """Record `name:refused` (or `name:ALLOWED`) as a result of the stage."""
    return (f"if ( {command} ) >/dev/null 2>&1; then r=ALLOWED; else r=refused; fi; "
            f"echo \"{name}:$r\" >> /cyclone/results/__result__")


def outputs(run: dict, stage: str) -> dict[str, str]:
    entry = run["status"]["stages"][stage]
    return {o["key"]: o["value"] for o in entry.get("outputs") or []}


async def test_a_stage_cannot_reach_the_data_dir_other_tenants_or_the_host(stack) -> None:
    up = stack.data_dir
    planted = up / "node" / "volumes" / "pvc" / stack.b.namespace / "planted"
    planted.mkdir(parents=True, exist_ok=True)
    (planted / "secret.txt").write_text("tenant b")
    script = "; ".join([
        attempt("shadow", "cat /etc/shadow"),
        attempt("clusterdb", f"cat {up}/cluster.db"),
        attempt("admintoken", f"cat {up}/admin-token"),
        attempt("cliconfig", f"cat {up}/cli-config.yaml"),
        attempt("otherpvc", f"cat {planted}/secret.txt"),
        attempt("listpvcs", f"ls {up}/node/volumes/pvc"),
        attempt("listlogs", f"ls {up}/node/logs"),
        attempt("writeroot", "touch /escape"),
        attempt("writeusr", "touch /usr/escape"),
        attempt("writecwd", f"touch {os.getcwd()}/escape"),
        attempt("chown", "touch /cyclone/results/f && chown 0 /cyclone/results/f"),
        attempt("mount", "mount -t tmpfs none /tmp"),
        attempt("hostprocess", f"test -e /proc/{os.getpid()}/cmdline"),
        attempt("admincall", f"curl -fs -H \"Authorization: Bearer $(cat {up}/admin-token)\""
                f" {stack.base_url}/apis/v1alpha1/tenants"),
    ])
    await apply_flow(stack.a.http, "probe", "probe", [shell_stage("probe", script)])
    run = await start_run(stack.a.http, "probe", "probe")
    done = await wait_run(stack.a.http, "probe", "probe", run["metadata"]["name"])

    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
    results = outputs(done, "probe")
    assert len(results) == 14, results
    assert {name for name, result in results.items() if result != "refused"} == set(), results


def make_repository(repo: Path) -> str:
    """A Git repository with `hello.txt` on `main`; returns its HEAD commit."""
    repo.mkdir()
    (repo / "hello.txt").write_text("hello\n")
    identity = ["-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["init", "-q", "-b", "main"], ["add", "hello.txt"],
                    [*identity, "commit", "-q", "-m", "one"]):
        subprocess.run(["git", "-C", str(repo), *command], check=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


async def test_a_normal_build_clones_writes_results_and_uploads_an_artifact(
    stack, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    head = make_repository(repo)
    url = serve_git_repository(repo, tmp_path / "served")
    http = stack.a.http
    expect(await http.post("/projects", json={"metadata": {"name": "build"}}), 201, 409)
    expect(await http.post("/projects/build/resources", json={
        "metadata": {"name": "source"}, "spec": {"type": "Git", "parameters": [
            {"name": "SCM_URL", "value": url}, {"name": "SCM_REVISION", "value": "main"}]}}),
        201)
    expect(await http.post("/projects/build/resources", json={
        "metadata": {"name": "package"}, "spec": {"type": "Http"}}), 201)
    stage = shell_stage(
        "compile",
        "cat /workspace/source/hello.txt; mkdir -p /workspace/package; "
        "cp /workspace/source/hello.txt /workspace/package/app.txt; "
        "echo \"built:$(cat /workspace/source/hello.txt)\" > /cyclone/results/__result__")
    stage["spec"]["pod"]["inputs"] = {"resources": [{"name": "source",
                                                     "path": "/workspace/source"}]}
    stage["spec"]["pod"]["outputs"] = {"resources": [{"name": "package",
                                                      "path": "/workspace/package"}]}
    await apply_flow(http, "build", "ci", [stage])
    run = await start_run(http, "build", "ci")
    name = run["metadata"]["name"]
    done = await wait_run(http, "build", "ci", name)

    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
    results = outputs(done, "compile")
    assert results["built"] == "hello"
    assert results.get("LastCommitID", head) == head
    artifacts = expect(await http.get(f"{runs_path('build', 'ci')}/{name}/artifacts"), 200)
    assert artifacts["items"], artifacts
