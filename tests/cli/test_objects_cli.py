from __future__ import annotations

import json
from pathlib import Path

import yaml

from cyclone.api import keys
from cyclone.kube import kinds

MANIFESTS = """\
apiVersion: cyclone.dev/v1alpha1
kind: Workflow
metadata:
  name: ci
  labels:
    project.cyclone.dev/name: demo
spec:
  stages:
  - name: build
  - name: test
    depends: [build]
---
apiVersion: cyclone.dev/v1alpha1
kind: Project
metadata:
  name: demo
spec: {}
---
apiVersion: cyclone.dev/v1alpha1
kind: Stage
metadata:
  name: build
  labels:
    project.cyclone.dev/name: demo
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.19
        command: [sh, -c, "echo building"]
---
apiVersion: cyclone.dev/v1alpha1
kind: Stage
metadata:
  name: test
  labels:
    project.cyclone.dev/name: demo
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.19
        command: [sh, -c, "echo testing"]
"""


def write(tmp_path: Path, text: str, name: str = "objects.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_apply_creates_then_updates_every_document(cyclone, tmp_path, live_server) -> None:
    first = cyclone("apply", "-f", write(tmp_path, MANIFESTS))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        "project/demo created", "stage/build created", "stage/test created",
        "workflow/ci created",
    ]
    changed = MANIFESTS.replace("echo testing", "echo testing again")
    second = cyclone("apply", "-f", write(tmp_path, changed))
    assert second.exit_code == 0, second.output
    assert "stage/test configured" in second.stdout.splitlines()
    stage = live_server.call(live_server.cluster.get(kinds.STAGE, "test", "cyclone-system"))
    assert stage["spec"]["pod"]["spec"]["containers"][0]["command"][-1] == "echo testing again"
    assert stage["metadata"]["labels"][keys.LABEL_PROJECT] == "demo"


def test_apply_reads_stdin_and_takes_project_from_the_flag(cyclone) -> None:
    project = cyclone("apply", "-f", "-", input=MANIFESTS.split("---\n")[1])
    assert project.exit_code == 0, project.output
    stage = MANIFESTS.split("---\n")[2].replace(
        "  labels:\n    project.cyclone.dev/name: demo\n", "").replace("name: build", "name: lint")
    result = cyclone("apply", "-f", "-", "--project", "demo", input=stage)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "stage/lint created"


def test_get_lists_as_table_and_by_short_name(cyclone, tmp_path) -> None:
    assert cyclone("apply", "-f", write(tmp_path, MANIFESTS)).exit_code == 0
    table = cyclone("get", "stg", "--project", "demo")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PROJECT", "TYPE", "AGE"]
    assert ["build", "demo", "Pod"] in [line.split()[:3] for line in lines[1:]]
    assert ["test", "demo", "Pod"] in [line.split()[:3] for line in lines[1:]]
    across_projects = cyclone("get", "workflows")
    assert across_projects.stdout.splitlines()[1].split()[:3] == ["ci", "demo", "2"]
    projects = cyclone("get", "proj", "-o", "name")
    assert projects.stdout.splitlines() == ["project/demo"]


def test_get_one_object_as_yaml_or_json(cyclone, tmp_path) -> None:
    assert cyclone("apply", "-f", write(tmp_path, MANIFESTS)).exit_code == 0
    as_yaml = yaml.safe_load(cyclone("get", "wf", "ci", "-o", "yaml").stdout)
    as_json = json.loads(cyclone("get", "workflow", "ci", "-p", "demo", "-o", "json").stdout)
    assert as_yaml["metadata"]["name"] == as_json["metadata"]["name"] == "ci"
    assert [s["name"] for s in as_json["spec"]["stages"]] == ["build", "test"]


def test_delete_removes_the_object(cyclone, tmp_path) -> None:
    assert cyclone("apply", "-f", write(tmp_path, MANIFESTS)).exit_code == 0
    deleted = cyclone("delete", "stage", "test", "--project", "demo")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == "stage/test deleted"
    missing = cyclone("get", "stage", "test", "--project", "demo")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: stage 'test' not found"


def test_tenant_create_list_delete(cyclone) -> None:
    created = cyclone("tenant", "create", "team-a", "--pvc-size", "5Gi",
                      "--quota", "limits.cpu=2")
    assert created.exit_code == 0, created.output
    listed = cyclone("tenant", "list", "-o", "json")
    tenants = {t["metadata"]["name"]: t for t in json.loads(listed.stdout)}
    assert tenants["team-a"]["spec"]["persistentVolumeClaim"]["size"] == "5Gi"
    assert tenants["team-a"]["spec"]["resourceQuota"]["limits.cpu"] == "2"
    deleted = cyclone("tenant", "delete", "team-a")
    assert deleted.exit_code == 0, deleted.output
    assert "team-a" not in cyclone("tenant", "list").stdout


def test_tenant_settings_are_granted_and_withdrawn_by_the_admin(cyclone) -> None:
    created = cyclone("tenant", "create", "team-s", "--quota", "limits.cpu=2",
                      "--allow-pod-feature", "hostNetwork")
    assert created.exit_code == 0, created.output

    def spec() -> dict:
        tenants = json.loads(cyclone("tenant", "list", "-o", "json").stdout)
        return {t["metadata"]["name"]: t for t in tenants}["team-s"]["spec"]

    assert spec()["allowedPodFeatures"] == ["hostNetwork"]
    assert spec()["allowLocalAddresses"] is False
    updated = cyclone("tenant", "update", "team-s", "--allow-local-addresses",
                      "--allow-pod-feature", "hostPath")
    assert updated.exit_code == 0, updated.output
    assert spec()["allowedPodFeatures"] == ["hostPath"]
    assert spec()["allowLocalAddresses"] is True
    assert spec()["resourceQuota"] == {"limits.cpu": "2"}
    assert cyclone("tenant", "update", "team-s", "--no-pod-features",
                   "--no-local-addresses").exit_code == 0
    assert (spec()["allowedPodFeatures"], spec()["allowLocalAddresses"]) == ([], False)
    refused = cyclone("tenant", "update", "team-s", "--allow-pod-feature", "rootOfAllHosts")
    assert refused.exit_code == 1
    assert "allowedPodFeatures" in refused.stderr


def test_integration_create_and_list_never_shows_secrets(cyclone) -> None:
    created = cyclone("integration", "create", "github", "--type", "scm",
                      "--set", "type=GitHub", "--set", "server=https://github.com",
                      "--set", "token=ghp_verysecret", "--set", "authType=Token")
    assert created.exit_code == 0, created.output
    listed = cyclone("integration", "list")
    assert listed.stdout.splitlines()[1].split()[:2] == ["github", "SCM"]
    as_yaml = cyclone("get", "integrations", "github", "-o", "yaml").stdout
    assert "https://github.com" in as_yaml
    assert "ghp_verysecret" not in as_yaml


def test_tenant_flag_scopes_requests(cyclone, tmp_path) -> None:
    assert cyclone("tenant", "create", "team-b").exit_code == 0
    assert cyclone("tenant", "create", "team-c").exit_code == 0
    applied = cyclone("--tenant", "team-b", "apply", "-f", write(tmp_path, MANIFESTS))
    assert applied.exit_code == 0, applied.output
    assert cyclone("--tenant", "team-c", "get", "proj", "-o", "name").stdout.strip() == ""
    in_team_b = cyclone("get", "proj", "-o", "name", env={"CYCLONE_TENANT": "team-b"})
    assert in_team_b.stdout.strip() == "project/demo"


def test_labelled_stages_and_resources_go_to_templates_and_resource_types(cyclone,
                                                                         tmp_path) -> None:
    text = """\
kind: Stage
metadata:
  name: my-shell
  labels: {stage.cyclone.dev/template: "true"}
spec:
  pod:
    spec:
      containers: [{image: alpine, command: [sh, -c, "{{ cmd }}"]}]
    inputs:
      arguments: [{name: cmd, value: echo hi}]
---
kind: Resource
metadata:
  name: my-type
  labels: {resource.cyclone.dev/template: "true"}
spec:
  type: MyType
  resolver: example/resolver:1
  operations: [pull]
"""
    result = cyclone("apply", "-f", write(tmp_path, text, "templates.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["resourcetype/my-type created",
                                          "stagetemplate/my-shell created"]
    templates = cyclone("get", "templates", "-o", "name").stdout.splitlines()
    assert "stagetemplate/my-shell" in templates
    assert "resourcetype/my-type" in cyclone("get", "resourcetypes", "-o", "name").stdout


def test_cluster_integration_open_and_close(cyclone, live_server) -> None:
    assert cyclone("tenant", "create", "ops").exit_code == 0
    env = {"CYCLONE_TENANT": "ops"}
    created = cyclone("integration", "create", "local", "--type", "Cluster",
                      "--set", "clusterName=local", "--set", "isControlCluster=true",
                      "--set", "isWorkerCluster=true", "--set", "namespace=cyclone-ops-worker",
                      env=env)
    assert created.exit_code == 0, created.output
    opened = cyclone("integration", "open-cluster", "local", env=env)
    assert opened.exit_code == 0, opened.output
    assert opened.stdout.strip() == "integration/local cluster opened"
    namespace = live_server.call(live_server.cluster.get(kinds.NAMESPACE, "cyclone-ops-worker"))
    assert namespace["metadata"]["name"] == "cyclone-ops-worker"
    closed = cyclone("integration", "close-cluster", "local", env=env)
    assert closed.exit_code == 0, closed.output
    not_a_cluster = cyclone("integration", "create", "gh", "--type", "SCM", "--set",
                            "server=https://github.com", env=env)
    assert not_a_cluster.exit_code == 0, not_a_cluster.output
    refused = cyclone("integration", "open-cluster", "gh", env=env)
    assert refused.exit_code == 1
    assert refused.stderr == "error: integration 'gh' is not of type Cluster\n"
