"""The built-in CI/CD stage templates beyond plain commands: Gradle build and unit test,
Go unit test report, image build, SonarQube code scan and deploy.

Each runs one script (`template_scripts/`) that reads its arguments from environment
variables, so an argument's value is never parsed as shell. Figures a stage reports are
`key:value` lines in `/cyclone/results/__result__` (stage outputs); a failure ends with
one line saying what went wrong, in the log and as the output `error`. Credentials come
from the tenant's integrations by reference, e.g.
`${secrets.cyclone-<tenant>:<integration>/data.integration/sonarQube.token}`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from cyclone.api import keys

SCRIPTS = Path(__file__).with_name("template_scripts")
WORKSPACE = "/workspace"
INTEGRATION_HINT = ("from an integration, as a ${…} reference to "
                    "secrets.cyclone-<tenant>:<integration>/data.integration/%s")
"""Written so that it is not itself a reference (the engine would read every one)."""
GRADLE_HOME = 'export GRADLE_USER_HOME="${GRADLE_USER_HOME:-$HOME/.gradle}"\n'
"""Gradle's user home defaults to the home directory of the user's passwd entry, which a
sandboxed user may not have; `$HOME` is writable wherever a stage runs."""


@cache
def script(name: str) -> str:
    return (SCRIPTS / name).read_text()


def _argument(name: str, value: str, description: str, *, required: bool = False) -> dict:
    """An argument; an empty default is left out (a real cluster's schema refuses an empty
    string there), and renders as an empty string."""
    argument: dict = {"name": name, "description": description}
    if value:
        argument["value"] = value
    if required:
        argument["required"] = True
    return argument


def _template(name: str, alias: str, scene: str, description: str, arguments: list[dict],
              env: dict[str, str], body: str) -> dict:
    """A template whose one container runs `body` with `env` (argument references)."""
    return {
        "apiVersion": keys.API_VERSION,
        "kind": "Stage",
        "metadata": {
            "name": name,
            "namespace": keys.SYSTEM_NAMESPACE,
            "labels": {keys.LABEL_BUILTIN: "true", keys.LABEL_STAGE_TEMPLATE: "true",
                       keys.LABEL_SCENE: scene},
            "annotations": {keys.ANNOTATION_ALIAS: alias,
                            keys.ANNOTATION_DESCRIPTION: description},
        },
        "spec": {"pod": {
            "inputs": {"arguments": arguments},
            "spec": {"containers": [{
                "name": "main",
                "image": "{{ image }}",
                "workingDir": "{{ workDir }}",
                "command": ["/bin/sh", "-c", body],
                "env": [{"name": key, "value": value} for key, value in env.items()],
            }]},
        }},
    }


def _common(image: str) -> list[dict]:
    return [
        _argument("image", image, "Image to run in (under `cyclone up` the host's tools are "
                                   "used and the image is only recorded)"),
        _argument("workDir", WORKSPACE, "Directory to work in: where the sources are (an "
                                        "input resource's path)"),
    ]


def _gradle_build() -> dict:
    return _template(
        "gradle-build", "Gradle build", "build",
        "Build a Gradle project without its tests (gradle build -x test)",
        [*_common("gradle:8.7-jdk17"),
         _argument("cmd", "gradle --no-daemon build -x test", "Shell commands to run")],
        {}, "set -e\n" + GRADLE_HOME + "{{{ cmd }}}")


def _gradle_test() -> dict:
    return _template(
        "gradle-test", "Gradle unit test", "test",
        "Run a Gradle project's unit tests (gradle test); the JUnit report's figures become "
        "the outputs tests, passed, failed and skipped",
        [*_common("gradle:8.7-jdk17"),
         _argument("cmd", "gradle --no-daemon test", "Shell commands that run the tests"),
         _argument("reportDir", "build/test-results/test",
                   "Where the JUnit XML reports are, from workDir")],
        {"CMD": "{{{ cmd }}}", "REPORT_DIR": "{{{ reportDir }}}"},
        GRADLE_HOME + script("junit-summary.sh") + script("gradle-test.sh"))


def _golang_test_report() -> dict:
    return _template(
        "golang-test-report", "Go unit test report", "test",
        "Run go test with coverage; the JSON report and coverage profile go to reportDir, "
        "and tests, passed, failed, skipped and coverage (percent) become outputs",
        [*_common("golang:1.22"),
         _argument("packages", "./...", "Packages to test"),
         _argument("flags", "", "More go test flags, e.g. -race"),
         _argument("coverMode", "set", "Coverage mode: set, count or atomic"),
         _argument("reportDir", ".cyclone-test-report",
                   "Where report.json (go test -json) and coverage.out are written, "
                   "from workDir")],
        {"PACKAGES": "{{{ packages }}}", "FLAGS": "{{{ flags }}}",
         "COVER_MODE": "{{{ coverMode }}}", "REPORT_DIR": "{{{ reportDir }}}"},
        script("golang-test-report.sh"))


def _image_build() -> dict:
    return _template(
        "image-build", "Image build", "build",
        "Build an image from a Dockerfile with buildah, podman or docker (the first that "
        "works) and push it to a registry; outputs image and, when known, digest",
        [*_common("quay.io/buildah/stable:v1.35"),
         _argument("context", ".", "Build context, from workDir"),
         _argument("dockerfile", "Dockerfile", "Dockerfile, from workDir"),
         _argument("registry", "", "Registry host[:port]; "
                   + INTEGRATION_HINT % "dockerRegistry.server"),
         _argument("repository", "", "Repository in the registry, e.g. team/app", required=True),
         _argument("tag", "latest", "Tag to push"),
         _argument("user", "", "Registry user; " + INTEGRATION_HINT % "dockerRegistry.user"),
         _argument("password", "", "Registry password; "
                   + INTEGRATION_HINT % "dockerRegistry.password"),
         _argument("insecure", "false", "true: the registry speaks plain HTTP or its "
                                        "certificate does not verify (buildah, podman)")],
        {"CONTEXT": "{{{ context }}}", "DOCKERFILE": "{{{ dockerfile }}}",
         "REGISTRY": "{{{ registry }}}", "REPOSITORY": "{{{ repository }}}",
         "TAG": "{{{ tag }}}", "REGISTRY_USER": "{{{ user }}}",
         "REGISTRY_PASSWORD": "{{{ password }}}", "INSECURE": "{{{ insecure }}}"},
        script("image-build.sh"))


def _sonarqube_scan() -> dict:
    return _template(
        "sonarqube-scan", "SonarQube code scan", "codescan",
        "Check the token against SonarQube, run sonar-scanner when it is installed and "
        "report the project's quality gate as the output qualityGate (OK, WARN, ERROR…)",
        [*_common("sonarsource/sonar-scanner-cli:5"),
         _argument("sonarURL", "", "URL of the SonarQube server; "
                   + INTEGRATION_HINT % "sonarQube.server", required=True),
         _argument("sonarToken", "", "Token of the SonarQube server; "
                   + INTEGRATION_HINT % "sonarQube.token", required=True),
         _argument("projectKey", "", "Key of the SonarQube project: letters, digits, "
                                       "-, _, . and :, with at least one non-digit", required=True),
         _argument("projectName", "", "Name shown by SonarQube (default: projectKey)"),
         _argument("sourcePath", ".", "Sources to analyse, from workDir"),
         _argument("encoding", "UTF-8", "Encoding of the source files"),
         _argument("language", "", "Language of the sources, e.g. go (default: all)"),
         _argument("waitSeconds", "300", "How long to wait for SonarQube to process the "
                                         "analysis"),
         _argument("failOnError", "false", "true: a quality gate of ERROR fails the stage")],
        {"SONAR_URL": "{{{ sonarURL }}}", "SONAR_TOKEN": "{{{ sonarToken }}}",
         "PROJECT_KEY": "{{{ projectKey }}}", "PROJECT_NAME": "{{{ projectName }}}",
         "SOURCE_PATH": "{{{ sourcePath }}}", "ENCODING": "{{{ encoding }}}",
         "LANGUAGE": "{{{ language }}}", "WAIT_SECONDS": "{{{ waitSeconds }}}",
         "FAIL_ON_ERROR": "{{{ failOnError }}}"},
        script("sonarqube-scan.sh"))


def _deploy() -> dict:
    credential = "cluster.credential."
    return _template(
        "kubectl-deploy", "Deploy (CD)", "cd",
        "Update the images of a Deployment (kubectl set image) and/or apply a manifest in "
        "a cluster; outputs deployment and revision",
        [*_common("bitnami/kubectl:1.30"),
         _argument("kubeconfig", "", "A whole kubeconfig; "
                   + INTEGRATION_HINT % (credential + "kubeConfig")),
         _argument("server", "", "API server URL, when no kubeconfig is given; "
                   + INTEGRATION_HINT % (credential + "server")),
         _argument("token", "", "Bearer token, with server; "
                   + INTEGRATION_HINT % (credential + "bearerToken")),
         _argument("caData", "", "Base64 PEM of the server's CA, with server; "
                   + INTEGRATION_HINT % (credential + "tlsClientConfig.caData")),
         _argument("insecure", "false", "true: do not verify the server's certificate "
                                        "(with server, without caData)"),
         _argument("namespace", "default", "Namespace of the Deployment"),
         _argument("deployment", "", "Name of the Deployment"),
         _argument("images", "", "Images to set, as container=image pairs separated by "
                                 "spaces, e.g. app=registry/team/app:1.2"),
         _argument("manifest", "", "YAML to apply first (kubectl apply)"),
         _argument("waitRollout", "false", "true: wait until the rollout is complete"),
         _argument("timeout", "120", "Seconds to wait for the Deployment")],
        {"KUBECONFIG_DATA": "{{{ kubeconfig }}}", "SERVER": "{{{ server }}}",
         "TOKEN": "{{{ token }}}", "CA_DATA": "{{{ caData }}}", "INSECURE": "{{{ insecure }}}",
         "NAMESPACE": "{{{ namespace }}}", "DEPLOYMENT": "{{{ deployment }}}",
         "IMAGES": "{{{ images }}}", "MANIFEST": "{{{ manifest }}}",
         "WAIT_ROLLOUT": "{{{ waitRollout }}}", "TIMEOUT": "{{{ timeout }}}"},
        script("deploy.sh"))


def cicd_stage_templates() -> list[dict]:
    return [_gradle_build(), _gradle_test(), _golang_test_report(), _image_build(),
            _sonarqube_scan(), _deploy()]
