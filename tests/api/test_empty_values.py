"""Fields left empty or null, as Cyclone v1.2 manifests leave them: the CRD schemas let a
kube-apiserver keep them (and take an empty string as a string), the models read a null
as a field not given, and admission takes an empty duration as no duration."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cyclone.api import validate_object
from cyclone.api.crds import render_crds
from cyclone.api.workflow import Workflow
from cyclone.cli.objects import read_documents, refusal

V12_EMPTY_VALUES = Path(__file__).resolve().parents[1] / "data" / "v12" / "empty-values.yaml"
SCALARS = {"string", "integer", "number", "boolean"}


def _schemas() -> dict[str, dict[str, Any]]:
    return {crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            for crd in render_crds()}


def _fields(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, schema) of ``node``'s fields and map values, recursively; a list's item is
    walked into but not listed itself."""
    found = []
    for name, sub in (node.get("properties") or {}).items():
        found += [(f"{path}.{name}", sub), *_fields(sub, f"{path}.{name}")]
    if isinstance(node.get("additionalProperties"), dict):
        sub = node["additionalProperties"]
        found += [(f"{path}{{}}", sub), *_fields(sub, f"{path}{{}}")]
    if isinstance(node.get("items"), dict):
        found += _fields(node["items"], f"{path}[]")
    return found


def as_kube_reads_it(node: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema a kube-apiserver validates with: ``nullable`` admits null."""
    node = copy.deepcopy(node)
    for key in ("properties", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = ({name: as_kube_reads_it(sub) for name, sub in node[key].items()}
                         if key == "properties" else as_kube_reads_it(node[key]))
    if isinstance(node.get("items"), dict):
        node["items"] = as_kube_reads_it(node["items"])
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        elif "anyOf" in node:
            node["anyOf"] = [*node["anyOf"], {"type": "null"}]
    return node


def test_every_field_under_spec_and_status_is_nullable_and_nothing_else_is() -> None:
    for kind, schema in _schemas().items():
        top = schema["properties"]
        for name in ("apiVersion", "kind", "metadata"):
            assert "nullable" not in top[name], (kind, name)
        for name in ("spec", "status"):
            if name not in top:
                continue
            assert top[name].get("nullable") is True, (kind, name)
            for path, node in _fields(top[name], name):
                assert node.get("nullable") is True, (kind, path)
            for path, node in _fields(top[name], name):
                if isinstance(node.get("items"), dict):
                    assert "nullable" not in node["items"], (kind, path)


def test_the_v12_empty_and_null_forms_fit_the_crd_schemas_as_kube_reads_them() -> None:
    schemas = {kind: as_kube_reads_it(schema) for kind, schema in _schemas().items()}
    documents = read_documents(str(V12_EMPTY_VALUES))
    assert {doc["kind"] for doc in documents} == {
        "Stage", "Resource", "Workflow", "WorkflowTrigger", "WorkflowRun"}
    for doc in documents:
        jsonschema.validate(doc, schemas[doc["kind"]])
    stage = next(doc for doc in documents if doc["kind"] == "Stage")
    stage["spec"]["pod"]["inputs"]["arguments"][0] = None
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(stage, schemas["Stage"])


def test_the_v12_empty_and_null_forms_are_valid_objects() -> None:
    problems = {doc["metadata"]["name"]: validate_object(doc)
                for doc in read_documents(str(V12_EMPTY_VALUES))}
    assert problems == {name: [] for name in problems}


def test_a_null_reads_as_a_field_not_given_and_a_required_null_is_missing() -> None:
    workflow = Workflow.from_object(yaml.safe_load("""
        metadata: {name: w}
        spec:
          stages:
          - {name: a, depends: null, trivial: null, artifacts: null}
          globalVariables: null
          notification: null
    """))
    item = workflow.spec.stages[0]
    assert (item.depends, item.trivial, item.artifacts) == ([], False, [])
    assert workflow.spec.global_variables == [] and workflow.spec.notification is None
    assert workflow.to_object()["spec"] == {"stages": [{"name": "a"}], "notification": None}
    refused = validate_object({"apiVersion": "cyclone.dev/v1alpha1", "kind": "Workflow",
                               "metadata": {"name": "w"}, "spec": {"stages": [{"name": None}]}})
    assert [str(problem) for problem in refused] == ["spec.stages[0].name: required"]


def test_an_empty_timeout_is_no_timeout_and_a_malformed_one_is_still_refused() -> None:
    def run(timeout: str) -> dict[str, Any]:
        return {"apiVersion": "cyclone.dev/v1alpha1", "kind": "WorkflowRun",
                "metadata": {"name": "r"},
                "spec": {"workflowRef": {"name": "w"}, "timeout": timeout}}

    assert validate_object(run("")) == []
    assert [problem.path for problem in validate_object(run("soon"))] == ["spec.timeout"]


@pytest.mark.parametrize(("message", "said"), [
    ("invalid Workflow 'ghost': spec.stages[0].name: stage 'x' not found",
     "Workflow 'ghost': spec.stages[0].name: stage 'x' not found"),
    ("invalid Workflow: spec.stages: required", "Workflow 'ghost': spec.stages: required"),
    ("project 'p' not found", "Workflow 'ghost': project 'p' not found"),
])
def test_a_refusal_names_the_object_once(message: str, said: str) -> None:
    assert refusal("Workflow", "ghost", message) == said
