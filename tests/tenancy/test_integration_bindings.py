"""A project's integrations reach its stages as v1.2 intends: the built-in Git type's binding
fills a Git resource's URL and token from the project's SCM integration, only ever from the
tenant's own integrations; and of an integration only the credentials are masked.

Tenant a checks out a repository served over HTTP that answers only its token, with a Git
resource that names neither URL nor token, and prints its SonarQube integration's server,
type and token. Tenant b's project lists a's integration name and a Secret of its own that
is not an integration: b's checkout gets neither's values.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import http.server
import json
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from cyclone.kube import kinds
from cyclone.kube.informer import Informer

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run
from .test_bad_input import allow_local

GIT_TOKEN = "glpat-bound-token-6f2c91"
PLAIN_TOKEN = "plain-secret-token-0d4e77"
SONAR_TOKEN = "squ_masked-token-3a9b58"
SONAR_URL = "http://sonarqube.example.invalid:9000"


class _TokenOnlyFiles(http.server.SimpleHTTPRequestHandler):
    """Serves a bare repository over dumb HTTP to requests carrying the expected token."""

    expected = ""
    seen: list[str]

    def do_GET(self) -> None:
        header = self.headers.get("Authorization", "")
        token = ""
        if header.startswith("Basic "):
            token = base64.b64decode(header[6:]).decode(errors="replace").partition(":")[2]
        self.seen.append(token)
        if token != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve_repository(where: Path, token: str) -> tuple[str, list[str], object]:
    repo = where / "repo"
    repo.mkdir()
    (repo / "README").write_text("bound checkout works\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                        *args], check=True, capture_output=True)
    served = where / "served"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(served / "app.git")],
                   check=True)
    subprocess.run(["git", "-C", str(served / "app.git"), "update-server-info"], check=True)
    seen: list[str] = []
    handler = functools.partial(
        type("Handler", (_TokenOnlyFiles,), {"expected": token, "seen": seen}),
        directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/app.git", seen, server


def _checkout_stage(namespace: str) -> dict:
    reference = f"${{secrets.{namespace}:sonar/data.integration/sonarQube"
    script = ('cat /workspace/src/README; '
              'echo "scan: the token $SONAR_TOKEN is not valid for SonarQube at $SONAR_URL"; '
              'echo "said:token $SONAR_TOKEN for SonarQube at $SONAR_URL" '
              '>> /cyclone/results/__result__; echo END-OF-LOG')
    stage = shell_stage("checkout", script)
    stage["spec"]["pod"]["inputs"] = {"resources": [
        {"name": "src", "type": "Git", "path": "/workspace/src"}]}
    container = stage["spec"]["pod"]["spec"]["containers"][0]
    if namespace:
        container["env"] = [{"name": "SONAR_URL", "value": f"{reference}.server}}"},
                            {"name": "SONAR_TOKEN", "value": f"{reference}.token}}"}]
    return stage


async def _project(http: httpx.AsyncClient, name: str, integrations: list[dict]) -> None:
    expect(await http.post("/projects", json={
        "metadata": {"name": name}, "spec": {"integrations": integrations}}), 201)
    expect(await http.post(f"/projects/{name}/resources", json={
        "metadata": {"name": "src"}, "spec": {"type": "Git", "parameters": [
            {"name": "SCM_REVISION", "value": "main"}]}}), 201)


async def test_a_projects_integrations_bind_its_git_resource_and_only_credentials_are_masked(
        stack, tmp_path):
    a, b = stack.a, stack.b
    url, seen, server = _serve_repository(tmp_path, GIT_TOKEN)
    try:
        await allow_local(stack, a.name)
        expect(await a.http.post("/integrations", json={
            "metadata": {"name": "gitsrv"}, "spec": {"type": "SCM", "scm": {
                "type": "GitLab", "server": url, "token": GIT_TOKEN}}}), 201)
        expect(await a.http.post("/integrations", json={
            "metadata": {"name": "mirror"}, "spec": {"type": "SCM", "scm": {
                "type": "GitLab", "server": url, "token": "mirror-token-5e1a0c"}}}), 201)
        expect(await a.http.post("/integrations", json={
            "metadata": {"name": "sonar"}, "spec": {"type": "SonarQube", "sonarQube": {
                "server": SONAR_URL, "token": SONAR_TOKEN}}}), 201)
        await _project(a.http, "bound", [{"type": "SCM", "name": "gitsrv"},
                                         {"type": "SonarQube", "name": "sonar"},
                                         {"type": "SCM", "name": "mirror"}])
        await apply_flow(a.http, "bound", "ci", [_checkout_stage(a.namespace)])

        plain = {"type": "SCM", "scm": {"server": url, "token": PLAIN_TOKEN}}
        await stack.cluster.create({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "plain", "namespace": b.namespace},
            "data": {"integration": base64.b64encode(json.dumps(plain).encode()).decode()}})
        await _project(b.http, "attack", [{"type": "SCM", "name": "gitsrv"},
                                          {"type": "SCM", "name": "plain"}])
        await apply_flow(b.http, "attack", "ci", [_checkout_stage("")])

        seen_pods: dict[str, dict] = {}
        held: dict[str, dict] = {}
        async with _kept(stack.cluster, seen_pods, held):
            ran = await start_run(a.http, "bound", "ci")
            attacked = await start_run(b.http, "attack", "ci")
            done = await wait_run(a.http, "bound", "ci", ran["metadata"]["name"])
            refused = await wait_run(b.http, "attack", "ci", attacked["metadata"]["name"])
    finally:
        server.shutdown()

    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
    assert refused["status"]["stages"]["checkout"]["status"] | {
        "lastTransitionTime": "", "startTime": ""} == {
        "phase": "Failed", "reason": "GeneratePodError", "lastTransitionTime": "",
        "startTime": "", "message": 'stage "checkout": resource "src": parameter SCM_URL is '
        "required and has no value (set it on the Resource, in the run's spec.resources or "
        "bind it from a SCM integration of the project)"}
    assert set(seen) <= {"", GIT_TOKEN} and GIT_TOKEN in seen
    pods = list(seen_pods.values())
    a_pods = [p for p in pods if p["metadata"]["namespace"].startswith(a.namespace)
              and p["metadata"]["labels"].get("stage.cyclone.dev/name") == "checkout"]
    b_pods = [p for p in pods if p["metadata"]["namespace"].startswith(b.namespace)]
    assert a_pods and GIT_TOKEN not in json.dumps(a_pods)
    pull = next(c for c in a_pods[0]["spec"]["initContainers"] if c["name"] == "csc-pull-src")
    env = {e["name"]: e for e in pull["env"]}
    assert env["SCM_URL"]["value"] == url
    assert env["SCM_AUTH"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{a_pods[0]['metadata']['name']}-bound", "key": "csc-pull-src.SCM_AUTH"}
    owned = held[f"{a_pods[0]['metadata']['name']}-bound"]
    assert [o["uid"] for o in owned["metadata"]["ownerReferences"]] == [
        a_pods[0]["metadata"]["uid"]]
    for secret in (GIT_TOKEN, PLAIN_TOKEN, url):
        assert secret not in json.dumps(b_pods) + json.dumps(refused), secret

    events = done["status"]["stages"]["checkout"].get("events") or []
    assert [e["message"] for e in events if e["reason"] == "IntegrationBinding"] == [
        'resource "src": the project has 2 SCM integrations (gitsrv, mirror); bound "gitsrv" '
        "(annotation resource.cyclone.dev/integration names another)"]
    outputs = {o["key"]: o["value"] for o in done["status"]["stages"]["checkout"]["outputs"]}
    assert outputs["said"] == f"token *** for SonarQube at {SONAR_URL}"
    path = f"{runs_path('bound', 'ci')}/{ran['metadata']['name']}"
    stored = await _stored_log(a.http, path)
    live = (await a.http.get(f"{path}/logstream", params={"stage": "checkout"},
                             timeout=60)).text
    for log in (stored, live):
        assert "bound checkout works" in log
        assert f"the token *** is not valid for SonarQube at {SONAR_URL}" in log
    for text in (json.dumps(done), stored, live):
        assert GIT_TOKEN not in text and SONAR_TOKEN not in text


@contextlib.asynccontextmanager
async def _kept(cluster, pods: dict[str, dict], secrets: dict[str, dict]
                ) -> AsyncIterator[None]:
    """Every pod and bound-credentials Secret as last seen, from watches started before
    the block (a run's pods go when it ends, sooner than a poll may look); Secrets once
    they are owned."""
    def on_pod(_type: str, pod: dict, _old: dict | None) -> None:
        pods[pod["metadata"]["name"]] = pod

    def on_secret(_type: str, secret: dict, _old: dict | None) -> None:
        meta = secret["metadata"]
        if meta["name"].endswith("-bound") and meta.get("ownerReferences"):
            secrets[meta["name"]] = secret

    informers = [Informer(cluster, kinds.POD), Informer(cluster, kinds.SECRET)]
    informers[0].add_handler(on_pod)
    informers[1].add_handler(on_secret)
    tasks = [asyncio.create_task(informer.run()) for informer in informers]
    try:
        for informer in informers:
            await informer.wait_synced()
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _stored_log(http: httpx.AsyncClient, path: str, within: float = 60.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        response = await http.get(f"{path}/logs", params={"stage": "checkout"})
        if response.status_code == 200 and "END-OF-LOG" in response.text:
            return response.text
        assert loop.time() < deadline, (response.status_code, response.text[-2000:])
        await asyncio.sleep(0.5)
