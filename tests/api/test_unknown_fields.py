"""Unknown fields in Cyclone objects are refused at admission, named with their path and the
nearest valid name; Kubernetes metadata and engine-written status stay permissive."""

from __future__ import annotations

from typing import Any

import pytest

from cyclone.api.strict import nearest
from cyclone.api.validation import FieldError, validate_object

API = "cyclone.dev/v1alpha1"


def pod_stage(container: dict[str, Any], **pod_spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Stage", "metadata": {"name": "build"},
            "spec": {"pod": {"spec": {"containers": [container], **pod_spec}}}}


def test_a_misspelt_container_field_is_named_with_its_path_and_the_right_name():
    stage = pod_stage({"name": "main", "image": "alpine", "comand": ["make"]})
    assert validate_object(stage) == [FieldError(
        "spec.pod.spec.containers[0].comand", "unknown field 'comand' (did you mean 'command'?)")]


def test_the_pod_spec_is_checked_against_the_kubernetes_schema_at_every_depth():
    stage = pod_stage(
        {"name": "main", "image": "alpine",
         "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "kee": "k"}}}],
         "resources": {"limits": {"cpu": "1"}}},
        nodeSelector={"any-label": "x"},
        volumes=[{"name": "v", "emptyDir": {}, "hostpath": {"path": "/x"}}],
        restartPolicy="Never")
    assert [str(e) for e in validate_object(stage)] == [
        "spec.pod.spec.containers[0].env[0].valueFrom.secretKeyRef.kee: "
        "unknown field 'kee' (did you mean 'key'?)",
        "spec.pod.spec.volumes[0].hostpath: unknown field 'hostpath' (did you mean 'hostPath'?)",
    ]


def test_pod_spec_values_may_hold_templates_that_only_render_later():
    stage = pod_stage({"name": "main", "image": "{{ image }}", "command": ["${variables.CMD}"]},
                      activeDeadlineSeconds="{{ deadline }}")
    assert validate_object(stage) == []


def test_unknown_fields_of_cyclone_models_are_refused_at_every_level():
    workflow = {"apiVersion": API, "kind": "Workflow", "metadata": {"name": "ci"},
                "spec": {"stages": [{"name": "a", "depend": ["b"]}, {"name": "b"}],
                         "notification": {"receivers": [{"type": "Email", "adress": []}]},
                         "resources": {"limit": {"cpu": "1"}}},
                "specs": {}}
    assert [str(e) for e in validate_object(workflow)] == [
        "specs: unknown field 'specs' (did you mean 'spec'?)",
        "spec.stages[0].depend: unknown field 'depend' (did you mean 'depends'?)",
        "spec.notification.receivers[0].adress: unknown field 'adress' "
        "(did you mean 'addresses'?)",
        "spec.resources.limit: unknown field 'limit' (did you mean 'limits'?)",
    ]


def test_an_unknown_field_far_from_every_name_gets_no_suggestion():
    run = {"apiVersion": API, "kind": "WorkflowRun", "metadata": {"name": "r"},
           "spec": {"workflowRef": {"name": "ci"}, "zzzz": 1}}
    assert [str(e) for e in validate_object(run)] == ["spec.zzzz: unknown field 'zzzz'"]


def test_metadata_and_status_keep_what_cyclone_does_not_model():
    run = {"apiVersion": API, "kind": "WorkflowRun",
           "metadata": {"name": "r", "selfLink": "/x", "somethingNew": {"a": 1}},
           "spec": {"workflowRef": {"name": "ci", "fieldPath": "x"}},
           "status": {"overall": {"phase": "Running", "extra": 1}, "engineNote": "x"}}
    assert validate_object(run) == []


def test_nearest_name_ignores_case_and_refuses_far_guesses():
    assert nearest("imagepullpolicy", ["image", "imagePullPolicy"]) == "imagePullPolicy"
    assert nearest("URL", ["url", "type"]) == "url"
    assert nearest("xyz", ["command", "args"]) is None


V1_2_OBJECTS = [
    ("Resource", {"type": "Git", "resolver": "img",
                  "parameters": [{"name": "a", "value": "b", "description": "d",
                                  "required": True}],
                  "persistent": {"pvc": "p", "path": "x", "pullPolicy": "Always"},
                  "operations": ["pull", "push"],
                  "bind": {"integrationType": "SCM", "paramBindings": {"SCM_URL": "scm.server"}}}),
    ("Project", {"integrations": [{"type": "SCM", "name": "g"}], "quota": {"cpu": "1"}}),
    ("ExecutionCluster", {"credential": {
        "server": "https://x", "user": "u", "password": "p", "bearerToken": "t",
        "tlsClientConfig": {"insecure": True, "caFile": "f", "caData": "d"}}}),
    ("Stage", {"pod": {
        "inputs": {"resources": [{"name": "r", "type": "Git", "path": "/w"}],
                   "arguments": [{"name": "a", "value": "v", "description": "d",
                                  "required": False}],
                   "artifacts": [{"name": "a", "path": "/p", "source": "x/y"}]},
        "outputs": {"resources": [{"name": "r"}], "artifacts": [{"name": "a", "path": "/p"}]},
        "spec": {"containers": [{"image": "x"}]},
        "metadata": {"labels": {"a": "b"}, "annotations": {"a": "b"}}}}),
    ("Stage", {"delegation": {"type": "t", "url": "http://x", "config": "{}"}}),
    ("Workflow", {"stages": [{"name": "s", "depends": [], "trivial": True,
                              "artifacts": [{"name": "a", "source": "s/a"}]}],
                  "globalVariables": [{"name": "a", "value": "b"}],
                  "notification": {"policy": "Always",
                                   "receivers": [{"type": "Email", "addresses": ["a@b"]}]},
                  "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}),
    ("WorkflowTrigger", {"type": "SCM", "disabled": False,
                         "parameters": [{"name": "a", "value": "b"}],
                         "workflowRef": {"name": "w"}, "timeout": "1h", "globalVariables": [],
                         "scm": {"secret": "s", "repo": "a/b",
                                 "push": {"enabled": True, "branches": ["m"]},
                                 "tagRelease": {"enabled": True},
                                 "pullRequest": {"enabled": True, "branches": []},
                                 "pullRequestComment": {"enabled": True, "comments": ["/t"]},
                                 "postCommit": {"enabled": True, "rootURL": "x",
                                                "workflowURL": "y"}}}),
    ("WorkflowRun", {"workflowRef": {"name": "w", "kind": "Workflow"}, "timeout": "1h",
                     "startStages": ["s"], "endStages": ["s"], "serviceAccount": "sa",
                     "resources": [{"name": "r", "parameters": [{"name": "a", "value": "b"}]}],
                     "stages": [{"name": "s", "parameters": [{"name": "a", "value": "b"}]}],
                     "executionContext": {"cluster": "c", "namespace": "n", "pvc": "p"},
                     "globalVariables": [{"name": "a", "value": "b"}],
                     "volumes": [{"type": "HostPath", "path": "/x", "mountPath": "/y",
                                  "subPath": "z", "containerGroup": "All"}]}),
]


@pytest.mark.parametrize(("kind", "spec"), V1_2_OBJECTS, ids=[k for k, _ in V1_2_OBJECTS])
def test_every_field_a_v1_2_manifest_may_use_is_known(kind: str, spec: dict) -> None:
    obj = {"apiVersion": API, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    assert validate_object(obj) == []
