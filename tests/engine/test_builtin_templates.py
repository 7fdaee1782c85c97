"""The built-in CI/CD templates run as a user runs them: a Stage copied from the template with
its arguments set, sources pulled from a Git resource, integrations' credentials taken by
`${secrets…}` reference, on the host runtime (real gradle, go, curl), on the embedded
cluster and on a real kube-apiserver."""

from __future__ import annotations

import base64
import copy
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from support.sonarqube import sonarqube

from cyclone.server.builtins import builtin_stage_templates
from cyclone.server.integration_records import secret_object

from .gates import serve_git_repository
from .harness import API, BACKENDS, NAMESPACE, outputs, stage_status, workflow, workflow_run
from .test_resolvers import git

SONAR_TOKEN = "squ_valid-token-4d1c9e"
WRONG_TOKEN = "squ_wrong-token-7a0b33"
BUILDERS = ("buildah", "podman", "docker")
GRADLE_STAGES = ("compile", "unit")
"""Run on the embedded cluster only: two Gradle JVMs take most of the test's time, and what a
real apiserver adds (admission of the Stages) is checked for them on both."""


def _missing_tools() -> list[str]:
    return [tool for tool in ("gradle", "go", "curl", "git") if shutil.which(tool) is None]


def _usable_builder() -> str | None:
    for tool in BUILDERS:
        if shutil.which(tool) and subprocess.run(
                [tool, "info"], capture_output=True, timeout=20).returncode == 0:
            return tool
    return None


def template(name: str) -> dict:
    return next(t for t in builtin_stage_templates() if t["metadata"]["name"] == name)


def from_template(name: str, stage: str, source: str | None, **arguments: str) -> dict:
    """A Stage of the tenant copied from a built-in template, as the editor makes one."""
    spec = copy.deepcopy(template(name)["spec"])
    for argument in spec["pod"]["inputs"]["arguments"]:
        if argument["name"] in arguments:
            argument["value"] = arguments.pop(argument["name"])
    assert not arguments, f"{name} has no arguments {sorted(arguments)}"
    if source:
        spec["pod"]["inputs"]["resources"] = [
            {"name": source, "type": "Git", "path": "/workspace"}]
    return {"apiVersion": API, "kind": "Stage",
            "metadata": {"name": stage, "namespace": NAMESPACE}, "spec": spec}


def git_source(name: str, url: str) -> dict:
    return {"apiVersion": API, "kind": "Resource",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"type": "Git", "parameters": [{"name": "SCM_URL", "value": url},
                                                   {"name": "SCM_REVISION", "value": "main"}]}}


def integration_ref(integration: str, path: str) -> str:
    return f"${{secrets.{NAMESPACE}:{integration}/data.integration/{path}}}"


def make_repository(path: Path) -> None:
    """A Gradle project (java/), a Go module (go/) and a Dockerfile."""
    files = {
        "java/build.gradle": "apply plugin: 'java'\ndependencies {\n  testCompile files("
                             "'/usr/share/java/junit4.jar', '/usr/share/java/hamcrest-core.jar')"
                             "\n}\n",
        "java/src/main/java/demo/Greet.java":
            "package demo;\npublic class Greet {\n"
            "  public static String hello(String n) { return \"hello \" + n; }\n}\n",
        "java/src/test/java/demo/GreetTest.java":
            "package demo;\nimport org.junit.Test;\nimport static org.junit.Assert.assertEquals;\n"
            "public class GreetTest {\n"
            "  @Test public void greets() { assertEquals(\"hello x\", Greet.hello(\"x\")); }\n"
            "  @Test public void greetsNobody() { assertEquals(\"hello \", Greet.hello(\"\")); }\n"
            "}\n",
        "go/go.mod": "module example.com/calc\n\ngo 1.19\n",
        "go/calc.go": "package calc\n\nfunc Add(a, b int) int { return a + b }\n\n"
                      "func Sub(a, b int) int { return a - b }\n",
        "go/calc_test.go": "package calc\n\nimport \"testing\"\n\n"
                           "func TestAdd(t *testing.T) {\n"
                           "\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"1+2\")\n\t}\n}\n\n"
                           "func TestLater(t *testing.T) { t.Skip(\"not yet\") }\n",
        "Dockerfile": "FROM scratch\nCOPY go /src\n",
    }
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "sources")


def container_logs(data_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace")
                     for p in sorted((data_dir / "node" / "logs").rglob("*.log")))


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_ci_templates_build_test_scan_and_report_their_figures(env, tmp_path):
    missing = _missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make test installs them)")
    builder = _usable_builder()
    repo = tmp_path / "repo"
    repo.mkdir()
    make_repository(repo)
    url = serve_git_repository(repo, tmp_path / "served")
    stages = {
        "gradle-build": from_template("gradle-build", "compile", "src-compile",
                                      workDir="/workspace/java"),
        "gradle-test": from_template("gradle-test", "unit", "src-unit",
                                     workDir="/workspace/java"),
        "golang-test-report": from_template("golang-test-report", "go-unit", "src-go",
                                            workDir="/workspace/go"),
        "image-build": from_template("image-build", "image", "src-image",
                                     repository="team/calc", tag="1.0"),
    }
    with sonarqube({SONAR_TOKEN}, {"calc": "ERROR"}) as sonar:
        for stage, integration in (("scan", "sonar"), ("scan-bad-token", "sonar-bad")):
            stages[stage] = from_template(
                "sonarqube-scan", stage, f"src-{stage}", projectKey="calc",
                sonarURL=integration_ref(integration, "sonarQube.server"),
                sonarToken=integration_ref(integration, "sonarQube.token"))
        sources = [git_source(s["spec"]["pod"]["inputs"]["resources"][0]["name"], url)
                   for s in stages.values()]
        integrations = [
            secret_object(name, NAMESPACE, "SonarQube",
                          {"type": "SonarQube", "sonarQube": {"server": sonar.url,
                                                              "token": token}})
            for name, token in (("sonar", SONAR_TOKEN), ("sonar-bad", WRONG_TOKEN))]
        names = [s["metadata"]["name"] for s in stages.values()]
        if env.backend != "embedded":
            names = [n for n in names if n not in GRADLE_STAGES]
        await env.apply(*integrations, *sources, *stages.values(), workflow("ci", [
            {"name": n, "trivial": n in ("image", "scan-bad-token")} for n in names]),
            workflow_run("ci-1", "ci"))
        run = await env.wait_phase("ci-1", "Succeeded", within=120)

    if env.backend == "embedded":
        assert outputs(run, "compile") == {"LastCommitID": git(repo, "rev-parse", "HEAD")}
        assert outputs(run, "unit") | {"LastCommitID": ""} == {
            "LastCommitID": "", "tests": "2", "passed": "2", "failed": "0", "skipped": "0"}
    assert outputs(run, "go-unit") | {"LastCommitID": ""} == {
        "LastCommitID": "", "tests": "2", "passed": "1", "failed": "0", "skipped": "1",
        "coverage": "50.0"}

    assert outputs(run, "scan")["qualityGate"] == "ERROR"
    assert stage_status(run, "scan-bad-token")["phase"] == "Failed"
    assert outputs(run, "scan-bad-token")["error"].startswith("the token is not valid for ")
    assert (("/api/qualitygates/project_status?projectKey=calc", SONAR_TOKEN)
            in sonar.requests)
    assert all(token == SONAR_TOKEN for path, token in sonar.requests
               if path.startswith("/api/qualitygates"))
    logs = container_logs(env.data_dir)
    assert "the token is not valid for SonarQube" in logs
    for token in (SONAR_TOKEN, WRONG_TOKEN):
        assert token not in logs
        assert token not in str(run["status"])

    if builder is None:
        assert stage_status(run, "image")["phase"] == "Failed"
        assert outputs(run, "image")["error"] == (
            "image build needs buildah, podman or docker; none is usable here")
        assert "image build: image build needs buildah, podman or docker; none is usable " \
               "here" in logs


def kubectl(plane, *args: str, input: str | None = None) -> str:
    return subprocess.run(["kubectl", "--kubeconfig", str(plane.kubeconfig), *args],
                          input=input, capture_output=True, text=True, check=True).stdout


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "registry.local/web:1.0"}]}
"""


@pytest.mark.k8s
@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_deploy_template_sets_a_deployments_image_and_reports_its_revision(env):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    from support.kube_engine import engine_plane

    plane = engine_plane()
    namespace = f"deploy-{secrets.token_hex(3)}"
    kubectl(plane, "create", "namespace", namespace)
    kubectl(plane, "apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    credential = {"server": plane.server, "bearerToken": plane.token, "tlsClientConfig": {
        "caData": base64.b64encode(plane.ca_file.read_bytes()).decode()}}
    stage = from_template(
        "kubectl-deploy", "deploy", None, namespace=namespace, deployment="web",
        images="web=registry.local/web:2.0",
        server=integration_ref("target", "cluster.credential.server"),
        token=integration_ref("target", "cluster.credential.bearerToken"),
        caData=integration_ref("target", "cluster.credential.tlsClientConfig.caData"))
    await env.apply(
        secret_object("target", NAMESPACE, "Cluster",
                      {"type": "Cluster", "cluster": {"credential": credential}}),
        stage, workflow("cd", [{"name": "deploy"}]), workflow_run("cd-1", "cd"))
    run = await env.wait_phase("cd-1", "Succeeded", within=90)

    assert outputs(run, "deploy") == {"deployment": f"{namespace}/web", "revision": "2"}
    assert kubectl(plane, "get", "-n", namespace, "deployment/web", "-o",
                   "jsonpath={.spec.template.spec.containers[0].image}") == \
        "registry.local/web:2.0"
    assert plane.token not in container_logs(env.data_dir)
