"""What Cyclone v1.2 manifests leave out and Cyclone fills in: the name of a stage's
resource declared by type and path, and the claim of a PVC volume without objectName."""

from __future__ import annotations

import json
import re

import pytest

from cyclone.api import keys
from cyclone.api.common import derived_resource_name, resource_item_name
from cyclone.api.validation import validate_object
from cyclone.engine.core.errors import StagePodError
from cyclone.engine.core.podbuilder import build_stage_pod
from cyclone.engine.core.podvolumes import preset_volumes
from cyclone.engine.core.tenancy import (
    OPENED_PREFIX,
    pod_spec_violations,
    policy_for,
    run_violations,
)

from .fixtures import context, git_resource, run, stage

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def template_stage(resources: list[dict]) -> dict:
    return {"apiVersion": "cyclone.dev/v1alpha1", "kind": "Stage",
            "metadata": {"name": "build"},
            "spec": {"pod": {"inputs": {"resources": resources},
                             "spec": {"containers": [{"image": "alpine"}]}}}}


def test_a_resource_without_a_name_is_named_from_its_type_and_path():
    assert derived_resource_name("Git", "/workspace") == "git-workspace"
    assert derived_resource_name("Git", "/go/src/github.com/Org/App_1") == (
        "git-go-src-github-com-org-app-1")
    assert derived_resource_name("Image", None) == "image"
    assert derived_resource_name(None, "/workspace") is None
    assert resource_item_name({"type": "Git", "path": "/workspace"}) == "git-workspace"
    assert resource_item_name({"name": "src", "type": "Git", "path": "/x"}) == "src"


def test_a_derived_name_is_a_dns_label_however_long_the_path():
    name = derived_resource_name("Git", "/" + "/deep-dir" * 20 + "/")
    assert len(name) <= 63 and DNS_LABEL.match(name), name


def test_a_v12_template_stage_is_valid_and_its_model_carries_the_derived_name():
    obj = template_stage([{"type": "Git", "path": "/workspace"}])
    assert validate_object(obj) == []
    built = stage(pod=obj["spec"]["pod"])
    assert [r.name for r in built.spec.pod.inputs.resources] == ["git-workspace"]


def test_a_resource_with_neither_name_nor_type_is_refused_naming_the_field():
    errors = validate_object(template_stage([{"path": "/workspace"}]))
    assert [(e.path, e.message) for e in errors] == [
        ("spec.pod.inputs.resources[0].name", "required when type is not given")]


def test_two_unnamed_resources_of_the_same_type_and_path_are_duplicates():
    errors = validate_object(template_stage([{"type": "Git", "path": "/workspace"}] * 2))
    assert [e.path for e in errors] == ["spec.pod.inputs.resources[1].name"]


def test_the_pod_pulls_an_unnamed_resource_under_its_derived_name():
    unnamed = stage(pod={"inputs": {"resources": [{"type": "Git", "path": "/workspace"}]},
                         "spec": {"containers": [{"image": "alpine", "command": ["true"]}]}})
    pod = build_stage_pod(context(stage=unnamed,
                                  resources={"git-workspace": git_resource("git-workspace")}))
    assert [c["name"] for c in pod["spec"]["initContainers"]][:1] == [
        "csc-pull-git-workspace"]
    assert {"name": "cyclone-data", "mountPath": "/workspace",
            "subPath": "workflowruns/ci-run-1/resources/git-workspace"} in (
        pod["spec"]["containers"][0]["volumeMounts"])


def test_a_pvc_volume_without_object_name_mounts_the_runs_pvc_with_its_sub_path():
    volumes, mounts = preset_volumes(
        [{"type": "PVC", "path": "caches", "subPath": "m2", "mountPath": "/root/.m2"},
         {"type": "PVC", "objectName": "shared", "mountPath": "/shared"}],
        "cyclone-pvc-devops")
    assert [v["persistentVolumeClaim"]["claimName"] for v in volumes] == [
        "cyclone-pvc-devops", "shared"]
    assert mounts["Workload"][0] == {"name": volumes[0]["name"], "mountPath": "/root/.m2",
                                     "subPath": "caches/m2"}


def test_a_pvc_volume_without_object_name_needs_the_run_to_have_a_pvc():
    with pytest.raises(ValueError, match=r"spec.volumes\[0\]: a PVC volume without "
                                         r"objectName mounts the run's PVC"):
        preset_volumes([{"type": "PVC", "mountPath": "/data"}], None)


def test_a_v12_run_with_a_pvc_volume_without_object_name_is_valid_and_mounts_its_pvc():
    obj = {"apiVersion": "cyclone.dev/v1alpha1", "kind": "WorkflowRun",
           "metadata": {"name": "r"},
           "spec": {"workflowRef": {"name": "ci"},
                    "volumes": [{"type": "PVC", "path": "shared", "mountPath": "/shared"}]}}
    assert validate_object(obj) == []
    pod = build_stage_pod(context(run=run(volumes=obj["spec"]["volumes"])))
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    assert claims == ["cyclone-pvc-devops", "cyclone-pvc-devops"]
    with pytest.raises(StagePodError):
        build_stage_pod(context(run=run(volumes=obj["spec"]["volumes"]), pvc=None))


def test_a_pvc_volume_without_object_name_never_reaches_another_tenants_pvc():
    control = keys.CONTROL_CLUSTER_NAME
    clusters = [{"metadata": {"name": control, "annotations": {
        OPENED_PREFIX + "ta": json.dumps([{"integration": "c", "namespace": "cyclone-ta-w",
                                           "pvc": "cyclone-pvc-ta"}]),
        OPENED_PREFIX + "tb": json.dumps([{"integration": "c", "namespace": "cyclone-tb-w",
                                           "pvc": "cyclone-pvc-tb"}])}}}]
    tb = policy_for("tb", None, clusters)
    volumes = [{"type": "PVC", "path": "shared", "mountPath": "/shared"}]

    def attempt(pvc: str) -> dict:
        return {"spec": {"volumes": volumes, "executionContext": {
            "cluster": control, "namespace": "cyclone-tb-w", "pvc": pvc}}}

    assert run_violations(tb, attempt("cyclone-pvc-tb")) == []
    [refused] = run_violations(tb, attempt("cyclone-pvc-ta"))
    assert refused.field == "spec.executionContext.pvc"
    pod = build_stage_pod(context(run=run(volumes=volumes), pvc="cyclone-pvc-ta"))
    assert [v.field for v in pod_spec_violations(tb, pod["spec"], "spec")] == [
        "spec.volumes[0].persistentVolumeClaim.claimName",
        "spec.volumes[2].persistentVolumeClaim.claimName"]
