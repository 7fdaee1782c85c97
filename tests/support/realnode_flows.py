"""Flows of the real-node tier run through any Cyclone server (`cyclone up` or one installed
with Helm): the seed's "Running a Workflow Step by Step", and the README's CI example with its
repository served over Git's dumb HTTP at the node's bridge address (where pods reach this
machine)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cyclone.api import keys
from cyclone.devcluster import ControlPlane
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from support.control_plane import remote_cluster_on
from support.realnode_kit import (
    EXAMPLES,
    STAGE_IMAGE,
    CycloneServer,
    RunsOf,
    example,
    outputs,
    overall,
    wait_for,
)
from support.seed_objects import seed_posts


def run_seed_steps(server: CycloneServer, plane: ControlPlane) -> None:
    """The seed's "Running a Workflow Step by Step" (as tests/server/test_seed_flow.py)
    against `server`, with the control cluster (`plane`, whose node is real) as the tenant's
    execution cluster."""
    tenant, meta_ns, worker_ns = "devops", "cyclone-devops", "cyclone-devops-worker"
    claim = "cyclone-pvc-devops"
    path = "/projects/demo/workflows/ci/workflowruns"
    limits = {"cpu": "100m", "memory": "64Mi"}

    def get(kind: kinds.Kind, name: str, namespace: str | None = None) -> dict:
        async def read() -> dict:
            async with remote_cluster_on(plane) as cluster:
                return await cluster.get(kind, name, namespace)

        return asyncio.run(read())

    def pods(namespace: str, selector: str) -> list[dict]:
        async def read() -> list[dict]:
            async with remote_cluster_on(plane) as cluster:
                return (await cluster.list(kinds.POD, namespace,
                                           label_selector=selector)).items

        return asyncio.run(read())

    with server.api() as admin, server.api(tenant) as http:
        # 1. A tenant: its namespace, its info in an annotation.
        answer = admin.post("/tenants", json={"metadata": {"name": tenant}, "spec": {
            "persistentVolumeClaim": {"size": "1Gi"},
            "resourceQuota": {"limits.cpu": "2", "limits.memory": "4Gi",
                              "requests.cpu": "1", "requests.memory": "2Gi"}}})
        assert answer.status_code == 201, answer.text
        assert keys.ANNOTATION_TENANT_INFO in get(kinds.NAMESPACE, meta_ns)[
            "metadata"]["annotations"]
        # 2. A cluster integration, kept as a Secret.
        answer = http.post("/integrations", json={"metadata": {"name": "cluster"}, "spec": {
            "type": "Cluster",
            "cluster": {"isControlCluster": True, "namespace": worker_ns}}})
        assert answer.status_code == 201, answer.text
        assert get(kinds.SECRET, "cluster", meta_ns)["metadata"]["labels"][
            keys.LABEL_INTEGRATION_TYPE] == "Cluster"
        # 3. Open it: quota, PVC (bound by the local-path provisioner), watchdog pod.
        answer = http.put("/integrations/cluster/opencluster")
        assert answer.status_code == 200, answer.text
        get(kinds.RESOURCE_QUOTA, f"cyclone-quota-{tenant}", worker_ns)
        wait_for(lambda: get(kinds.PERSISTENT_VOLUME_CLAIM, claim, worker_ns)["status"].get(
            "phase") == "Bound", 60, "the tenant PVC bound")
        watchdogs = pods(worker_ns, f"{keys.LABEL_POD_KIND}=pvc-watcher")
        assert len(watchdogs) == 1
        wait_for(lambda: (u := http.get("/storage/usages")).status_code == 200 and u.json(),
                 90, "the watchdog's storage usage")
        # 4. Resources, stages, a workflow.
        for route, body in seed_posts(STAGE_IMAGE, {"requests": limits, "limits": limits}):
            answer = http.post(route, json=body)
            assert answer.status_code == 201, answer.text
        # 5. A run: its pods in the worker namespace, its log live while it runs.
        answer = http.post(path, json={"metadata": {"name": "r1"}})
        assert answer.status_code == 201, answer.text
        with http.stream("GET", f"{path}/r1/logstream", params={"stage": "build"},
                         headers={"Accept": "text/event-stream"}, timeout=90) as stream:
            assert stream.status_code == 200
            assert any("building" in line for line in stream.iter_lines()
                       if line.startswith("data:"))
        runs = RunsOf(server, "demo", "ci", tenant)
        run = runs.finished("r1", timeout=120)
        assert overall(run)["phase"] == "Succeeded", run["status"]
        assert run["status"]["stages"]["build"]["pod"]["namespace"] == worker_ns
        artifacts = http.get(f"{path}/r1/artifacts").json()
        assert [a["name"] for a in artifacts["items"]] == ["package.tar.gz"], artifacts
        assert "testing demo.tar" in wait_for(
            lambda: "passed" in (log := runs.logs("r1", "test")) and log, 30, "the test log")
        # 6. GC: the run's data leaves the PVC, its pods go, its logs stay.
        runs.wait("r1", lambda r: bool(r["status"].get("cleaned")), 120, "status.cleaned")
        volume = get(kinds.PERSISTENT_VOLUME,
                     get(kinds.PERSISTENT_VOLUME_CLAIM, claim, worker_ns)["spec"]["volumeName"])
        assert not (Path(volume["spec"]["hostPath"]["path"]) / "workflowruns" / "r1").exists()
        assert pods(worker_ns, f"{keys.LABEL_WORKFLOWRUN}=r1") == []
        assert "built" in runs.logs("r1", "build")
        # Deleting the tenant removes its namespaces.
        assert admin.delete(f"/tenants/{tenant}").status_code == 204

    def gone(name: str) -> bool:
        try:
            return bool(get(kinds.NAMESPACE, name)["metadata"].get("deletionTimestamp"))
        except NotFound:
            return True

    wait_for(lambda: gone(worker_ns) and gone(meta_ns), 30, "the tenant's namespaces gone")


def run_readme_ci_example(up: CycloneServer, workdir: Path, host: str) -> None:
    """The README's CI example (examples/ci-pipeline.yaml) against `up`, its repository
    served over HTTP on `host` (where the node's pods reach this machine): the manifest's
    own run and `cyclone run --watch` of a second one (`ci-2`) check out, build, test and
    package."""
    repo = workdir / "cyclone-demo-repo"
    subprocess.run(["sh", str(EXAMPLES / "make-demo-repo.sh"), str(repo)], check=True,
                   capture_output=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    manifest = workdir / "ci-pipeline.yaml"
    with dumb_http_git(repo, workdir / "served", host) as url:
        manifest.write_text(example("ci-pipeline.yaml").replace(
            "git://127.0.0.1:9418/cyclone-demo-repo", url))
        up.cli_ok("apply", "-f", str(manifest))
        watched = up.cli("run", "ci", "-p", "demo", "--var", f"REPO_URL={url}",
                         "--name", "ci-2", "--watch", timeout=240)
        applied = RunsOf(up, "demo", "ci").finished("ci-run-1")
    assert watched.returncode == 0, f"{watched.stdout}\n{watched.stderr}"
    check_ci_example_runs(up, applied, watched.stdout, head)


def check_ci_example_runs(server: CycloneServer, applied: dict, watched: str,
                          head: str) -> None:
    """The CI example's runs: `applied` (ci-run-1, finished) and ci-2, whose `--watch`
    printed `watched`, checked out commit `head`, built, tested and packaged."""
    assert overall(applied)["phase"] == "Succeeded", applied["status"]
    for name in ("ci-build", "ci-test", "ci-package"):
        assert name in watched, watched
    run = RunsOf(server, "demo", "ci").get("ci-2")
    assert overall(run)["phase"] == "Succeeded", run["status"]
    assert outputs(run, "ci-build")["LastCommitID"] == head
    assert outputs(run, "ci-test") | {"LastCommitID": head} == {
        "LastCommitID": head, "passed": "3", "failed": "0"}
    packaged = outputs(run, "ci-package")
    assert packaged["package"] == "greet.tgz" and int(packaged["size"]) > 0
    assert "passed:3" in server.cli_ok("logs", "ci-2", "-s", "ci-test")


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def dumb_http_git(repo: Path, served: Path, host: str) -> Iterator[str]:
    """Serve a bare clone of `repo` over Git's dumb HTTP protocol (static files after
    `git update-server-info`) on `host`; yields its clone URL."""
    bare = served / f"{repo.name}.git"
    served.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True,
                   capture_output=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True,
                   capture_output=True)
    server = ThreadingHTTPServer((host, 0), functools.partial(_QuietFiles, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, name="git-dumb-http", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/{bare.name}"
    finally:
        server.shutdown()
        server.server_close()
