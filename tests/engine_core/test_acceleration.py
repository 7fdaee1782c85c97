import json

import pytest

from cyclone.engine.core import acceleration
from cyclone.engine.core.acceleration import (
    LABEL_ACCELERATION,
    build_clean_cache_pod,
    decide,
    is_accelerated,
    skipped_event,
)
from cyclone.engine.core.podbuilder import build_stage_pod

from .fixtures import context, stage
from .podchecks import assert_valid_pod, container, env_of, mounts_of

ON = {LABEL_ACCELERATION: "true"}


def usage(caches: int, total: int = 1000) -> str:
    return json.dumps({"total": total, "used": total // 2, "items": {"caches": caches}})


def test_the_label_true_accelerates():
    assert is_accelerated({LABEL_ACCELERATION: "true"})


@pytest.mark.parametrize("labels", [None, {}, {LABEL_ACCELERATION: "True"},
                                    {LABEL_ACCELERATION: "yes"}, {LABEL_ACCELERATION: ""}])
def test_other_label_values_do_not_accelerate(labels):
    assert not is_accelerated(labels)
    assert decide(labels, "shop", "pvc", None) == acceleration.NO_CACHES


def test_an_accelerated_run_without_a_report_gets_its_project_caches():
    assert decide(ON, "shop", "pvc", None) == acceleration.CacheDecision(True, "shop")


def test_caches_are_mounted_under_the_limit_and_refused_at_it():
    assert decide(ON, "shop", "pvc", usage(499)).mount
    at_limit = decide(ON, "shop", "pvc", usage(500))
    assert not at_limit.mount
    assert at_limit.message == (
        "acceleration caches not mounted: the caches use 500 bytes, at or over the limit "
        "of 500 bytes (clean them with cleancachetasks)")


def test_the_limit_is_a_share_of_the_total_or_an_absolute_size():
    assert not decide(ON, "shop", "pvc", usage(300), limit_fraction=0.3).mount
    assert decide(ON, "shop", "pvc", usage(299), limit_fraction=0.3).mount
    assert not decide(ON, "shop", "pvc", usage(100), limit_bytes=100).mount
    assert decide(ON, "shop", "pvc", usage(900), limit_bytes=901).mount


@pytest.mark.parametrize("raw", ["not json", "[]", json.dumps({"items": {"caches": 10**9}}),
                                 json.dumps({"total": "big", "items": "x"})])
def test_an_unreadable_or_incomplete_report_does_not_refuse_caches(raw):
    assert decide(ON, "shop", "pvc", raw).mount


@pytest.mark.parametrize(("project", "pvc", "why"), [
    (None, "pvc", "the run belongs to no project"),
    ("../x", "pvc", "the run belongs to no project"),
    ("shop", None, "the run has no tenant PVC"),
])
def test_an_accelerated_run_that_cannot_have_caches_says_why(project, pvc, why):
    decision = decide(ON, project, pvc, None)
    assert not decision.mount
    assert decision.message == f"acceleration caches not mounted: {why}"


def test_the_workload_mounts_each_cache_folder_of_its_project_from_the_tenant_pvc():
    pod = build_stage_pod(context(caches="shop"))
    assert_valid_pod(pod)
    mounts = mounts_of(container(pod, "c0"))
    assert {path: (m["name"], m["subPath"]) for path, m in mounts.items()
            if path.startswith("/root/")} == {
        "/root/.m2": ("cyclone-data", "caches/shop/m2"),
        "/root/.gradle": ("cyclone-data", "caches/shop/gradle"),
        "/root/.npm": ("cyclone-data", "caches/shop/npm"),
        "/root/.ivy2": ("cyclone-data", "caches/shop/ivy2"),
        "/root/.cache": ("cyclone-data", "caches/shop/cache"),
    }
    assert env_of(container(pod, "c0"))["XDG_CACHE_HOME"] == "/root/.cache"
    assert env_of(container(pod, "c0"))["GRADLE_USER_HOME"] == "/root/.gradle"


def test_a_pod_without_caches_mounts_nothing_under_root():
    pod = build_stage_pod(context())
    assert not [p for p in mounts_of(container(pod, "c0")) if p.startswith("/root")]
    assert "XDG_CACHE_HOME" not in env_of(container(pod, "c0"))


def test_without_a_pvc_no_cache_is_mounted():
    pod = build_stage_pod(context(caches="shop", pvc=None))
    assert not [p for p in mounts_of(container(pod, "c0")) if p.startswith("/root")]


def test_the_containers_own_mounts_and_settings_win_over_the_caches():
    own = stage(pod={"spec": {
        "containers": [{"image": "maven", "command": ["mvn"],
                        "env": [{"name": "MAVEN_OPTS", "value": "-Xmx1g"}],
                        "volumeMounts": [{"name": "m2", "mountPath": "/root/.m2"}]}],
        "volumes": [{"name": "m2", "emptyDir": {}}]}})
    pod = build_stage_pod(context(stage=own, caches="shop"))
    workload = container(pod, "c0")
    assert mounts_of(workload)["/root/.m2"] == {"name": "m2", "mountPath": "/root/.m2"}
    assert mounts_of(workload)["/root/.npm"]["subPath"] == "caches/shop/npm"
    assert env_of(workload)["MAVEN_OPTS"] == "-Xmx1g"


def test_the_clean_pod_empties_the_project_folder_on_the_tenant_pvc():
    pod = build_clean_cache_pod("shop", "devops", "cyclone-devops", "cyclone-pvc-devops")
    assert pod["metadata"]["name"] == "cachegc--shop"
    assert pod["metadata"]["labels"]["pod.kubernetes.io/kind"] == "gc"
    assert pod["metadata"]["labels"]["project.cyclone.dev/name"] == "shop"
    assert pod["spec"]["volumes"] == [
        {"name": "cyclone-data", "persistentVolumeClaim": {"claimName": "cyclone-pvc-devops"}}]
    script = pod["spec"]["containers"][0]["command"][2]
    assert '"/data/caches/shop"/*' in script and '"/data/caches/shop"/.[!.]*' in script


def test_the_clean_pod_refuses_a_project_name_that_is_not_a_folder():
    with pytest.raises(ValueError, match="not a valid folder name"):
        build_clean_cache_pod("../x", "devops", "ns", "pvc")


def test_the_skipped_event_names_the_run_once():
    run = {"apiVersion": "cyclone.dev/v1alpha1", "kind": "WorkflowRun",
           "metadata": {"name": "r1", "namespace": "cyclone-devops", "uid": "u1"}}
    event = skipped_event(run, "why", "2026-01-01T00:00:00Z")
    assert event["metadata"] == {"name": "r1.u1.caches", "namespace": "cyclone-devops"}
    assert event["involvedObject"]["name"] == "r1"
    assert (event["type"], event["reason"], event["message"]) == (
        "Warning", "AccelerationSkipped", "why")
