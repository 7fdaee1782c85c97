"""Stage pods at their edges: the user's own mounts, long names, the run uid, errors."""

import pytest

from cyclone.engine.core.errors import StagePodError
from cyclone.engine.core.podbuilder import ArtifactUpload, build_stage_pod

from .fixtures import context, run, stage, workflow
from .podchecks import assert_valid_pod, container, mounts_of
from .test_podbuilder import http_resource, image_resource, pod_stage, simple


def test_the_users_own_mounts_are_kept_beside_resource_mounts():
    s = pod_stage(
        {"containers": [{"image": "a", "volumeMounts": [{"name": "scratch",
                                                          "mountPath": "/scratch"}]}],
         "volumes": [{"name": "scratch", "emptyDir": {}}]},
        inputs={"resources": [{"name": "src", "path": "/src"}]},
    )
    pod = build_stage_pod(context(stage=s))
    assert_valid_pod(pod)
    assert set(mounts_of(pod["spec"]["containers"][0])) >= {"/scratch", "/src"}


def test_a_user_mount_at_a_resource_path_is_refused():
    s = pod_stage(
        {"containers": [{"image": "a", "volumeMounts": [{"name": "scratch",
                                                          "mountPath": "/src"}]}],
         "volumes": [{"name": "scratch", "emptyDir": {}}]},
        inputs={"resources": [{"name": "src", "path": "/src"}]},
    )
    with pytest.raises(StagePodError, match='container "c0": two volumes at /src') as caught:
        build_stage_pod(context(stage=s))
    assert caught.value.stage == "build"


def test_a_mount_given_twice_keeps_the_mounts_after_it():
    s = pod_stage(
        {"containers": [{"image": "a", "command": ["make"]}]},
        inputs={"resources": [{"name": "src", "path": "/src"}]},
        outputs={"resources": [{"name": "src", "path": "/src"}]},
    )
    r = run(volumes=[{"type": "HostPath", "path": "/var/cache", "mountPath": "/cache"}])
    pod = build_stage_pod(context(stage=s, run=r))
    assert set(mounts_of(pod["spec"]["containers"][0])) >= {"/src", "/cache"}


def test_long_names_become_label_values_kubernetes_accepts():
    name = "w" * 62 + "-tail"
    pod = build_stage_pod(context(workflow=workflow(), stage=simple([{"image": "a"}]),
                                  resources={}, tenant=name))
    value = pod["metadata"]["labels"]["tenant.cyclone.dev/name"]
    assert value == "w" * 62
    assert_valid_pod(pod)


def test_the_pod_carries_the_run_uid_and_a_recreated_run_gets_other_pod_names():
    first, again = run(), run()
    first.metadata.uid, again.metadata.uid = "uid-1", "uid-2"
    pod = build_stage_pod(context(run=first))
    assert pod["metadata"]["annotations"]["workflowrun.cyclone.dev/uid"] == "uid-1"
    assert pod["metadata"]["name"] != build_stage_pod(context(run=again))["metadata"]["name"]


def test_an_http_push_gets_each_upload_setting_once():
    s = pod_stage({"containers": [{"image": "alpine", "command": ["true"]}]},
                  outputs={"resources": [{"name": "pkg", "path": "/out"}]})
    upload = ArtifactUpload(url="http://server/up", token="cyu.devops.abc")
    pod = build_stage_pod(context(stage=s, resources={"pkg": http_resource("pkg", URL="")},
                                  artifact_upload=upload))
    names = [e["name"] for e in container(pod, "csc-push-pkg")["env"]]
    assert len(names) == len(set(names))


def test_a_users_init_container_keeps_its_own_resources():
    own = {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}
    s = simple([{"image": "a"}], initContainers=[{"name": "prep", "image": "alpine",
                                                  "resources": own}])
    pod = build_stage_pod(context(stage=s, resources={}))
    assert pod["spec"]["initContainers"][0]["resources"] == own


def _no_pod() -> dict:
    s = stage("build", pod=None)
    s.spec.pod = None
    return {"stage": s}


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        ({"resources": {}}, 'resource "src" not found'),
        (_no_pod(), "not a pod stage"),
        ({"stage": simple([]), "resources": {}}, "spec.pod.spec.containers is empty"),
        ({"stage": pod_stage({"containers": [{"image": "a"}]},
                             inputs={"artifacts": [{"name": "bin", "path": "/in"}]}),
          "resources": {}}, 'input artifact "bin" has no source "<stage>/<artifact>"'),
        ({"stage": pod_stage({"containers": [{"image": "a"}]},
                             outputs={"artifacts": [{"name": "out"}]}),
          "resources": {}}, 'output artifact "out" has no path'),
        ({"stage": pod_stage({"containers": [{"image": "a", "args": ["x"]}]},
                             outputs={"resources": [{"name": "img"}]}),
          "resources": {"img": image_resource()}},
         "output resources need the workload container to set command"),
    ],
)
def test_a_pod_that_cannot_be_built_names_the_stage_and_the_cause(overrides, detail):
    with pytest.raises(StagePodError) as caught:
        build_stage_pod(context(**overrides))
    assert (caught.value.stage, caught.value.detail) == ("build", detail)
    assert str(caught.value) == f'stage "build": {detail}'


def test_a_run_volume_of_unknown_type_names_the_stage():
    r = run(volumes=[{"type": "HostPath", "path": "/x", "mountPath": "/x"}])
    r.spec.volumes[0].type = "Nope"
    with pytest.raises(StagePodError) as caught:
        build_stage_pod(context(run=r))
    assert caught.value.stage == "build"
    assert str(caught.value) == "stage \"build\": spec.volumes[0]: unknown volume type 'Nope'"
