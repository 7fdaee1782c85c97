"""Manifests written for Cyclone v1.2 (tests/data/v12) apply unchanged, through the REST API
as `cyclone apply -f` sends them and through the cluster as kubectl applies them, on the
embedded cluster and a real kube-apiserver; the runnable ones run to success with the
outputs they promise.

One served environment (cluster, node agent, engine, REST server) per backend: every
manifest is applied once, both runs start together, and the tests read what that did.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml
from engine.gates import serve_git_repository
from engine.harness import BACKENDS, NAMESPACE, PVC, outputs, overall, stage_status
from engine.served import Served, served_env

from cyclone.api import keys
from cyclone.cli.client import CliError, CycloneClient
from cyclone.cli.config import CliSettings
from cyclone.cli.lint import documents, offline_problems
from cyclone.cli.objects import apply_object, read_documents
from cyclone.kube import kinds
from cyclone.kube.errors import Invalid, NotFound

pytestmark = pytest.mark.asyncio(loop_scope="module")

V12 = Path(__file__).parents[1] / "data" / "v12"
PROJECT = "v12"
PLACEHOLDER_URL = "https://git.example.com/demo/app.git"
ORDER = ["Project", "ResourceType", "Resource", "StageTemplate", "Stage", "Workflow",
         "WorkflowTrigger", "WorkflowRun"]
RUNS = ("diamond-run-1", "git-ci-run-1", "empty-values-run-1")


def manifests() -> list[tuple[str, dict]]:
    """(file relative to tests/data/v12, object) of every manifest, in file order, read as
    `cyclone apply -f` reads them (a template file is one YAML sequence, as in v1.2)."""
    return [(str(path.relative_to(V12)), obj) for path in sorted(V12.rglob("*.yaml"))
            for obj in read_documents(str(path))]


def role(doc: dict) -> str:
    """The kind, telling resource types and stage templates from plain objects."""
    labels = doc["metadata"].get("labels") or {}
    if doc["kind"] == "Resource" and keys.LABEL_RESOURCE_TEMPLATE in labels:
        return "ResourceType"
    if doc["kind"] == "Stage" and keys.LABEL_STAGE_TEMPLATE in labels:
        return "StageTemplate"
    return doc["kind"]


def make_repository(path: Path) -> str:
    """A repository whose VERSION is 1.2.0; its HEAD commit."""
    path.mkdir(parents=True)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), "-c", "user.name=t",
                               "-c", "user.email=t@t", *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "master")
    (path / "VERSION").write_text("1.2.0\n")
    git("add", ".")
    git("commit", "-q", "-m", "v1.2.0")
    return git("rev-parse", "HEAD")


@dataclass
class Applied:
    backend: str
    served: Served
    head: str
    kube_namespace: str
    rest: list[tuple[str, dict, str]] = field(default_factory=list)
    """(file, object, what `cyclone apply` said: "stage/x created" or the error line)."""
    kube: list[tuple[str, dict, dict | Exception]] = field(default_factory=list)
    runs: dict[str, dict] = field(default_factory=dict)
    refused: httpx.Response | None = None


async def _apply_through_cluster(applied: Applied, docs: list[tuple[str, dict]]) -> None:
    """As `kubectl apply -n NAMESPACE -f` does: each object created as written."""
    cluster = applied.served.env.cluster
    await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": applied.kube_namespace}})
    for file, doc in docs:
        if doc["kind"] == "WorkflowRun":
            continue
        obj = {**doc, "metadata": {**doc["metadata"], "namespace": applied.kube_namespace}}
        try:
            applied.kube.append((file, doc, await cluster.create(obj)))
        except Exception as exc:  # reported by the test that reads it
            applied.kube.append((file, doc, exc))


async def _wait_finished(served: Served, name: str, within: float = 120) -> dict:
    """The run once it has ended (or as it is after `within` s); {} when it was refused."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            run = await served.env.run(name)
        except NotFound:
            return {}
        if overall(run).get("phase") in ("Succeeded", "Failed", "Cancelled"):
            return run
        if asyncio.get_running_loop().time() > deadline:
            return run
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def applied(request, tmp_path_factory) -> AsyncIterator[Applied]:
    data_dir = tmp_path_factory.mktemp(f"v12-{request.param}")
    head = make_repository(data_dir / "repo" / "app")
    url = serve_git_repository(data_dir / "repo" / "app", data_dir / "served")
    docs = manifests()
    docs.sort(key=lambda item: ORDER.index(role(item[1])))
    async with served_env(data_dir / "env", backend=request.param) as served:
        result = Applied(request.param, served, head, f"cyclone-v12k-{secrets.token_hex(3)}")
        admin = {"Authorization": f"Bearer {served.admin_token}", "X-Tenant": "system"}
        with CycloneClient(CliSettings(served.base_url, "system", served.admin_token)) as cli:
            for file, doc in docs:
                body = yaml.safe_load(yaml.safe_dump(doc).replace(PLACEHOLDER_URL, url)) \
                    if doc["kind"] == "WorkflowRun" else doc
                try:
                    said = await asyncio.to_thread(apply_object, cli, body, None, None)
                except CliError as err:
                    said = f"error: {err.message}"
                result.rest.append((file, doc, said))
        result.refused = await served.http.post(
            f"/apis/v1alpha1/projects/{PROJECT}/stages", headers=admin, json={
                "metadata": {"name": "no-type"},
                "spec": {"pod": {"inputs": {"resources": [{"path": "/workspace"}]},
                                 "spec": {"containers": [{"image": "alpine"}]}}}})
        try:
            await _apply_through_cluster(result, docs)
            finished = await asyncio.gather(*(_wait_finished(served, name) for name in RUNS))
            result.runs = dict(zip(RUNS, finished, strict=True))
            yield result
        finally:
            with contextlib.suppress(NotFound):
                await served.env.cluster.delete(kinds.NAMESPACE, result.kube_namespace)


async def test_the_contract_covers_every_kind_and_template_of_v12():
    roles = {role(doc) for _, doc in manifests()}
    assert roles == set(ORDER)
    templates = {doc["metadata"]["name"] for _, doc in manifests()
                 if role(doc) == "StageTemplate"}
    assert {"golang-build-template", "maven-build-template", "gradle-build-template",
            "nodejs-build-template", "python-build-template", "golang-unit-test-template",
            "image-build-template", "sonarqube-template", "cd-template"} <= templates


async def test_every_v12_manifest_file_passes_cyclone_lint_offline():
    problems = [problem for path in sorted(V12.rglob("*.yaml"))
                for problem in offline_problems(documents(str(path),
                                                          read_documents(str(path))))]
    assert problems == []


async def test_every_v12_manifest_is_accepted_by_the_rest_api(applied):
    refused = [f"{file} {doc['kind']}/{doc['metadata']['name']}: {said}"
               for file, doc, said in applied.rest if not said.endswith(" created")]
    assert refused == []
    assert len(applied.rest) == len(manifests())


async def test_every_v12_manifest_is_stored_as_written_when_applied_through_the_cluster(
        applied):
    problems = []
    for file, doc, stored in applied.kube:
        where = f"{file} {doc['kind']}/{doc['metadata']['name']}"
        if isinstance(stored, Exception):
            problems.append(f"{where}: {stored}")
        elif stored.get("spec") != doc["spec"]:
            problems.append(f"{where}: stored spec differs: {stored.get('spec')}")
    assert problems == []
    assert len(applied.kube) == sum(1 for _, d in manifests() if d["kind"] != "WorkflowRun")


async def test_a_resource_without_name_or_type_is_refused_naming_the_field(applied):
    assert applied.refused is not None
    assert applied.refused.status_code == 422, applied.refused.text
    assert "spec.pod.inputs.resources[0].name" in applied.refused.text


async def test_the_v12_diamond_runs_with_artifacts_a_trivial_failure_and_the_run_pvc(
        applied):
    run = applied.runs["diamond-run-1"]
    assert overall(run).get("phase") == "Succeeded", run.get("status")
    assert outputs(run, "version") == {"version": "release-1.2.0"}
    assert outputs(run, "build-linux") == {"binary": "cyclone-release-1.2.0-linux"}
    assert outputs(run, "build-mac") == {"binary": "cyclone-release-1.2.0-mac"}
    assert stage_status(run, "lint").get("phase") == "Failed"
    assert outputs(run, "report") == {"stamp": "stamped by version"}
    pods = await applied.served.env.cluster.list(
        kinds.POD, NAMESPACE, label_selector=f"{keys.LABEL_WORKFLOWRUN}=diamond-run-1")
    claims = {v["persistentVolumeClaim"]["claimName"]
              for pod in pods.items for v in pod["spec"].get("volumes") or []
              if v.get("persistentVolumeClaim")}
    assert claims == {PVC}


async def test_the_v12_git_input_without_a_name_is_pulled_with_the_runs_parameters(applied):
    run = applied.runs["git-ci-run-1"]
    assert overall(run).get("phase") == "Succeeded", run.get("status")
    assert outputs(run, "unit-test") == {"tests": "1.2.0", "LastCommitID": applied.head}
    pod = (run["status"]["stages"]["unit-test"].get("pod") or {})["name"]
    spec = (await applied.served.env.cluster.get(kinds.POD, pod, NAMESPACE))["spec"]
    assert [c["name"] for c in spec["initContainers"]][:1] == ["csc-pull-git-workspace"]
    workload = spec["containers"][0]
    assert {"name": "cyclone-data", "mountPath": "/workspace",
            "subPath": "workflowruns/git-ci-run-1/resources/git-workspace"} in (
        workload["volumeMounts"])


async def test_the_v12_empty_and_null_values_mean_no_value(applied):
    run = applied.runs["empty-values-run-1"]
    assert overall(run).get("phase") == "Succeeded", run.get("status")
    assert outputs(run, "scan-settings") == {"language": "[]", "encoding": "[]",
                                             "profile": "strict"}
    assert stage_status(run, "scan-summary").get("phase") == "Succeeded"


SCHEMA_REFUSALS = [
    ({"kind": "Stage", "metadata": {"name": "typed"},
      "spec": {"retries": "two", "pod": {"spec": {}}}},
     'Stage.cyclone.dev "typed" is invalid: spec.retries: Invalid value: "string": '
     'spec.retries in body must be of type integer: "string"'),
    ({"kind": "Workflow", "metadata": {"name": "null-item"},
      "spec": {"stages": [{"name": "a", "depends": [None]}]}},
     'Workflow.cyclone.dev "null-item" is invalid: spec.stages.depends: Invalid value: '
     '"null": spec.stages.depends in body must be of type string: "null"'),
    ({"kind": "WorkflowTrigger", "metadata": {"name": "untyped"},
      "spec": {"type": "Nightly", "disabled": "yes"}},
     'WorkflowTrigger.cyclone.dev "untyped" is invalid: [spec.type: Unsupported value: '
     '"Nightly": supported values: "Cron", "SCM", "Webhook", spec.disabled: Invalid value: '
     '"string": spec.disabled in body must be of type boolean: "string"]'),
    ({"kind": "WorkflowTrigger", "metadata": {"name": "no-spec"}},
     'WorkflowTrigger.cyclone.dev "no-spec" is invalid: spec: Required value'),
]


async def test_both_clusters_refuse_what_does_not_fit_the_crd_schema_in_the_same_words(
        applied):
    said = []
    for doc, _ in SCHEMA_REFUSALS:
        obj = {"apiVersion": keys.API_VERSION, **doc,
               "metadata": {**doc["metadata"], "namespace": applied.kube_namespace}}
        try:
            await applied.served.env.cluster.create(obj)
            said.append("created")
        except Invalid as err:
            said.append(err.message)
    assert [_causes(m) for m in said] == [_causes(m) for _, m in SCHEMA_REFUSALS]


def _causes(message: str) -> tuple[str, frozenset[str]]:
    """A refusal as its subject and its set of causes: a kube-apiserver lists several
    causes in no fixed order."""
    subject, _, rest = message.partition(" is invalid: ")
    if rest.startswith("[") and rest.endswith("]"):
        return subject, frozenset(re.split(r", (?=spec\.|metadata\.|status\.)", rest[1:-1]))
    return subject, frozenset([rest])
