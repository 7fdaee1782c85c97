"""Stage pods at their edges: the user's own mounts, long names, the run uid, errors."""

import pytest

from cyclone.engine.core.errors import StagePodError
from cyclone.engine.core.podbuilder import ArtifactUpload, build_stage_pod
from cyclone.engine.core.render import secret_lookup_from

from .fixtures import META_NS, context, git_resource, run, stage, workflow
from .podchecks import assert_valid_pod, container, env_of, mounts_of
from .test_podbuilder import (
    git_type_template,
    http_resource,
    image_resource,
    pod_stage,
    simple,
)


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


def _argument_stage(value: str):
    return pod_stage({"containers": [{"image": "a", "command": ["sh", "-c", "{{ cmd }}"]}]},
                     inputs={"arguments": [{"name": "cmd", "value": value}]}, name="lint")


def test_arguments_render_the_time_randomness_and_secrets_of_the_run():
    secrets = {(META_NS, "creds"): {"stringData": {"token": "s3cret"}}}
    s = _argument_stage(f"$(timenow:20060102) $(random:6) ${{secrets.{META_NS}:creds/data.token}}")
    ctx = context(stage=s, resources={}, secret_lookup=secret_lookup_from(secrets))
    day, word, secret = build_stage_pod(ctx)["spec"]["containers"][0]["command"][2].split()
    assert (day, secret) == ("20260501", "s3cret")
    assert len(word) == 6 and word.isalnum()
    again = build_stage_pod(context(stage=s, resources={},
                                    secret_lookup=secret_lookup_from(secrets)))
    assert again["spec"]["containers"][0]["command"][2].split()[1] == word


def test_a_render_error_names_the_stage_being_built():
    with pytest.raises(StagePodError) as caught:
        build_stage_pod(context(stage=_argument_stage("${variables.nope}"), resources={}))
    assert str(caught.value) == 'stage "lint": unknown variable "nope"'


def _push_stage():
    return pod_stage({"containers": [{"image": "a", "command": ["make"]}]},
                     outputs={"resources": [{"name": "src", "path": "/src"}]})


def test_a_pushed_persistent_resource_brings_its_own_claim():
    persistent = git_resource(persistent={"pvc": "cache-pvc", "path": "/git/app"})
    pod = build_stage_pod(context(stage=_push_stage(), resources={"src": persistent}))
    assert_valid_pod(pod)
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    assert "cache-pvc" in claims
    data = mounts_of(container(pod, "csc-push-src"))["/workspace/data"]
    assert any(v["name"] == data["name"] for v in pod["spec"]["volumes"])


def test_a_pushed_resource_binds_parameters_from_an_integration():
    bare = git_resource()
    bare.spec.parameters = [p for p in bare.spec.parameters if p.name == "SCM_REPO"]
    integrations = {"SCM": {"type": "SCM", "scm": {"server": "https://git.local", "token": "t"}}}
    pod = build_stage_pod(context(stage=_push_stage(), resources={"src": bare},
                                  resource_types={"Git": git_type_template()},
                                  resource_integrations={"src": integrations}))
    env = env_of(container(pod, "csc-push-src"))
    assert (env["SCM_URL"], env["SCM_AUTH"]) == ("https://git.local", "t")


def test_each_input_artifact_takes_its_own_source_from_the_workflow():
    s = pod_stage({"containers": [{"image": "a"}]}, name="test",
                  inputs={"artifacts": [{"name": "bin", "path": "/in/bin"},
                                        {"name": "docs", "path": "/in/docs"}]})
    wf = workflow([{"name": "build"},
                   {"name": "test", "depends": ["build"],
                    "artifacts": [{"name": "bin", "source": "build/binary"},
                                  {"name": "docs", "source": "build/site"}]}])
    mounts = mounts_of(build_stage_pod(context(stage=s, workflow=wf, resources={}))
                       ["spec"]["containers"][0])
    assert mounts["/in/docs"]["subPath"].endswith("/stages/build/artifacts/site")


def test_a_run_of_no_project_gets_no_project_label():
    r, wf = run(), workflow()
    r.metadata.labels, wf.metadata.labels = {}, {}
    pod = build_stage_pod(context(run=r, workflow=wf, project=None))
    assert "project.cyclone.dev/name" not in pod["metadata"]["labels"]
