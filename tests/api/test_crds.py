"""The CRDs: eight structural schemas made from the models, shipped in deploy/crds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cyclone.api import validate_object
from cyclone.api.crds import render_crds, render_crds_yaml

from .manifests import manifest_paths

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CRDS = REPO_ROOT / "deploy" / "crds" / "cyclone-crds.yaml"

EXPECTED_NAMES = {
    "ExecutionCluster": ("executionclusters", "ec", "Cluster"),
    "Project": ("projects", "proj", "Namespaced"),
    "Resource": ("resources", "rsc", "Namespaced"),
    "Stage": ("stages", "stg", "Namespaced"),
    "Workflow": ("workflows", "wf", "Namespaced"),
    "WorkflowRun": ("workflowruns", "wfr", "Namespaced"),
    "WorkflowRunStages": ("workflowrunstages", "wfrs", "Namespaced"),
    "WorkflowTrigger": ("workflowtriggers", "wft", "Namespaced"),
}


def _crd_by_kind() -> dict[str, dict[str, Any]]:
    return {crd["spec"]["names"]["kind"]: crd for crd in render_crds()}


def _schema(kind: str) -> dict[str, Any]:
    return _crd_by_kind()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


def test_shipped_crds_equal_the_rendered_ones() -> None:
    assert SHIPPED_CRDS.read_text() == render_crds_yaml()


def test_rendered_yaml_parses_back_to_the_crds() -> None:
    assert list(yaml.safe_load_all(render_crds_yaml())) == render_crds()


def test_eight_crds_with_names_scope_and_version() -> None:
    crds = _crd_by_kind()
    assert set(crds) == set(EXPECTED_NAMES)
    for kind, (plural, short, scope) in EXPECTED_NAMES.items():
        spec = crds[kind]["spec"]
        assert crds[kind]["metadata"]["name"] == f"{plural}.cyclone.dev"
        assert spec["group"] == "cyclone.dev"
        assert spec["scope"] == scope
        assert spec["names"]["plural"] == plural
        assert spec["names"]["shortNames"] == [short]
        (version,) = spec["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", sorted(EXPECTED_NAMES))
def test_crd_is_a_valid_custom_resource_definition(kind: str) -> None:
    kubernetes_validate.validate(_crd_by_kind()[kind], "1.30", strict=True)


@pytest.mark.parametrize("kind", sorted(EXPECTED_NAMES))
def test_schema_is_structural(kind: str) -> None:
    for path, node in _nodes(_schema(kind)):
        assert "$ref" not in node, path
        assert "title" not in node and "default" not in node, path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            continue
        assert "anyOf" not in node and "oneOf" not in node and "allOf" not in node, path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert node.get("type", "object") == "object", path
            continue
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, (
            path
        )
        assert not ("properties" in node and "additionalProperties" in node), path
        if node["type"] == "array":
            assert isinstance(node.get("items"), dict), path


def test_metadata_is_a_plain_object() -> None:
    for kind in EXPECTED_NAMES:
        assert _schema(kind)["properties"]["metadata"] == {"type": "object"}


def test_unknown_fields_are_preserved_only_in_free_form_objects() -> None:
    preserved = {
        (kind, path)
        for kind in EXPECTED_NAMES
        for path, node in _nodes(_schema(kind))
        if node.get("x-kubernetes-preserve-unknown-fields")
    }
    assert preserved == {
        ("ExecutionCluster", ".spec.credential.kubeConfig"),
        ("ExecutionCluster", ".status"),
        ("Resource", ".status"),
        ("Stage", ".spec.pod.spec"),
        ("Stage", ".status"),
        ("Workflow", ".spec.resources"),
        ("Workflow", ".status"),
    }


def test_enums_and_required_fields_come_from_the_models() -> None:
    run = _schema("WorkflowRun")["properties"]
    phase = run["status"]["properties"]["overall"]["properties"]["phase"]
    assert phase["enum"] == ["Pending", "Running", "Waiting", "Succeeded", "Failed", "Cancelled"]
    volume = run["spec"]["properties"]["volumes"]["items"]
    assert volume["required"] == ["type", "mountPath"]
    trigger = _schema("WorkflowTrigger")
    assert trigger["required"] == ["spec"]
    assert trigger["properties"]["spec"]["properties"]["concurrencyPolicy"]["enum"] == [
        "Allow", "Forbid", "Replace",
    ]
    post_commit = trigger["properties"]["spec"]["properties"]["scm"]["properties"]["postCommit"]
    assert set(post_commit["properties"]) == {"enabled", "rootURL", "workflowURL"}


def test_engine_fields_are_documented() -> None:
    stage_spec = _schema("Stage")["properties"]["spec"]["properties"]
    assert "retried" in stage_spec["retries"]["description"]
    run_spec = _schema("WorkflowRun")["properties"]["spec"]["properties"]
    for name in ("paused", "stopped", "retryOf"):
        assert run_spec[name]["description"].startswith("Beyond Cyclone v1"), name


def test_printer_columns() -> None:
    crds = _crd_by_kind()

    def columns(kind: str) -> dict[str, str]:
        version = crds[kind]["spec"]["versions"][0]
        return {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}

    assert columns("WorkflowRun")["Phase"] == ".status.overall.phase"
    assert columns("Resource")["Type"] == ".spec.type"
    assert columns("WorkflowTrigger")["Type"] == ".spec.type"
    assert columns("WorkflowTrigger")["Disabled"] == ".spec.disabled"
    for kind in EXPECTED_NAMES:
        assert columns(kind)["Age"] == ".metadata.creationTimestamp"


def _custom_resource_manifests() -> list[Path]:
    return [
        path
        for path in manifest_paths()
        if yaml.safe_load(path.read_text())["kind"] in EXPECTED_NAMES
    ]


@pytest.mark.parametrize("path", _custom_resource_manifests(), ids=lambda p: p.stem)
def test_sample_manifests_fit_their_crd_schema(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    jsonschema.validate(data, _schema(data["kind"]))


def test_crd_schema_rejects_what_the_models_reject() -> None:
    stage = yaml.safe_load((REPO_ROOT / "tests/fixtures/manifests/stage-pod.yaml").read_text())
    stage["spec"]["retries"] = "two"
    assert validate_object(stage) != []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(stage, _schema("Stage"))
