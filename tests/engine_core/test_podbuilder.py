import pytest

from cyclone.api.resource import Resource
from cyclone.engine.core.errors import StagePodError
from cyclone.engine.core.images import IMAGE_TAG
from cyclone.engine.core.podbuilder import PodBuildOptions, build_stage_pod
from cyclone.engine.core.render import RenderError

from .fixtures import META_NS, WORK_NS, context, git_resource, project, run, stage, workflow
from .podchecks import all_containers, assert_valid_pod, container, env_of, mounts_of

BASE_ENV = {
    "METADATA_NAMESPACE": META_NS,
    "WORKFLOW_NAME": "ci",
    "WORKFLOWRUN_NAME": "ci-run-1",
    "STAGE_NAME": "build",
}


def pod_stage(spec, inputs=None, outputs=None, name="build", metadata=None):
    pod = {"spec": spec}
    if inputs is not None:
        pod["inputs"] = inputs
    if outputs is not None:
        pod["outputs"] = outputs
    if metadata is not None:
        pod["metadata"] = metadata
    return stage(name, pod=pod)


def simple(containers, **spec):
    return pod_stage({"containers": containers, **spec})


def test_default_pod_is_valid_and_complete():
    pod = build_stage_pod(context())
    assert_valid_pod(pod)
    meta = pod["metadata"]
    assert meta["namespace"] == WORK_NS
    assert meta["name"].startswith("ci-build-")
    assert meta["labels"] == {
        "pod.kubernetes.io/created-by": "cyclone",
        "pod.kubernetes.io/kind": "workload",
        "workflow.cyclone.dev/name": "ci",
        "workflowrun.cyclone.dev/name": "ci-run-1",
        "stage.cyclone.dev/name": "build",
        "tenant.cyclone.dev/name": "devops",
        "project.cyclone.dev/name": "shop",
    }
    assert meta["annotations"]["cyclone.dev/meta-namespace"] == META_NS
    assert meta["annotations"]["stage.cyclone.dev/attempt"] == "1"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["tolerations"] == [{"key": "ci", "operator": "Exists"}]


def test_pod_is_deterministic_and_named_per_attempt():
    assert build_stage_pod(context()) == build_stage_pod(context())
    first = build_stage_pod(context())["metadata"]
    second = build_stage_pod(context(attempt=2))["metadata"]
    assert first["name"] != second["name"]
    assert second["annotations"]["stage.cyclone.dev/attempt"] == "2"


def test_arguments_are_rendered_into_the_workload():
    workload = build_stage_pod(context())["spec"]["containers"][0]
    assert workload["image"] == "golang:1.22"
    assert workload["command"] == ["sh", "-c", "make test"]


def test_required_argument_missing_is_a_render_error():
    with pytest.raises(RenderError, match='stage "build": required argument "cmd"'):
        build_stage_pod(context(run=run(stages=[])))


def test_base_env_is_on_every_container():
    s = pod_stage(
        {
            "initContainers": [{"name": "prep", "image": "alpine", "command": ["true"]}],
            "containers": [
                {"image": "alpine", "command": ["true"], "env": [{"name": "A", "value": "1"}]},
                {"name": "db", "image": "postgres"},
            ],
        },
        inputs={"resources": [{"name": "src", "path": "/src"}]},
        outputs={"resources": [{"name": "img", "path": "/out"}]},
    )
    resources = {"src": git_resource(), "img": image_resource()}
    pod = build_stage_pod(context(stage=s, resources=resources))
    assert_valid_pod(pod)
    for item in all_containers(pod):
        env = env_of(item)
        for key, value in BASE_ENV.items():
            assert env[key] == value, item["name"]
    assert env_of(container(pod, "c0"))["A"] == "1"


def test_user_env_cannot_override_base_env():
    s = simple([{"image": "a", "env": [{"name": "STAGE_NAME", "value": "fake"}]}])
    pod = build_stage_pod(context(stage=s, resources={}))
    names = [e["name"] for e in pod["spec"]["containers"][0]["env"]]
    assert names.count("STAGE_NAME") == 1
    assert env_of(pod["spec"]["containers"][0])["STAGE_NAME"] == "build"


@pytest.mark.parametrize(
    ("containers", "expected"),
    [
        ([{"image": "a"}], ["c0"]),
        ([{"name": "main", "image": "a"}], ["main"]),
        ([{"image": "a"}, {"image": "b"}], ["c0", "wsc-c1"]),
        ([{"name": "m", "image": "a"}, {"name": "db", "image": "b"}], ["m", "wsc-db"]),
        ([{"image": "a"}, {"name": "wsc-cache", "image": "b"}], ["c0", "wsc-cache"]),
    ],
)
def test_container_naming(containers, expected):
    pod = build_stage_pod(context(stage=simple(containers), resources={}))
    assert [c["name"] for c in pod["spec"]["containers"]] == expected


def test_workload_writes_results_to_the_termination_message_path():
    pod = build_stage_pod(context())
    workload = pod["spec"]["containers"][0]
    assert workload["terminationMessagePath"] == "/cyclone/results/__result__"
    assert mounts_of(workload)["/cyclone/results"]["name"] == "cyclone-results"
    assert {"name": "cyclone-results", "emptyDir": {}} in pod["spec"]["volumes"]


def test_input_resource_is_pulled_by_an_init_container_and_mounted():
    pod = build_stage_pod(context())
    pull = container(pod, "csc-pull-src")
    assert pod["spec"]["initContainers"][0]["name"] == "csc-pull-src"
    assert pull["image"] == f"cyclone/resolver-git:{IMAGE_TAG}"
    assert pull["command"] == ["/entrypoint.sh", "pull"]
    assert pull["workingDir"] == "/workspace"
    assert mounts_of(pull)["/workspace/data"] == {
        "name": "cyclone-data",
        "mountPath": "/workspace/data",
        "subPath": "workflowruns/ci-run-1/resources/src",
    }
    env = env_of(pull)
    assert env["SCM_URL"] == "https://github.com"
    assert env["SCM_REPO"] == "acme/app"
    assert env["SCM_REVISION"] == "main"
    assert env["SCM_AUTH"] == "wf-token"
    workload = pod["spec"]["containers"][0]
    assert mounts_of(workload)["/workspace/src"]["subPath"] == (
        "workflowruns/ci-run-1/resources/src"
    )
    assert {
        "name": "cyclone-data",
        "persistentVolumeClaim": {"claimName": "cyclone-pvc-devops"},
    } in pod["spec"]["volumes"]


def test_run_resource_parameters_and_variables_override_defaults():
    r = run(
        resources=[{"name": "src", "parameters": [{"name": "SCM_REVISION", "value": "dev"}]}],
        globalVariables=[{"name": "TOKEN", "value": "run-token"}],
    )
    pull = container(build_stage_pod(context(run=r)), "csc-pull-src")
    assert env_of(pull)["SCM_REVISION"] == "dev"
    assert env_of(pull)["SCM_AUTH"] == "run-token"


def test_resolver_image_from_resource_then_type_template_then_builtin():
    custom = git_resource(resolver="acme/git-resolver:2")
    pod = build_stage_pod(context(resources={"src": custom}))
    assert container(pod, "csc-pull-src")["image"] == "acme/git-resolver:2"
    template = Resource.from_object(
        {
            "apiVersion": "cyclone.dev/v1alpha1",
            "kind": "Resource",
            "metadata": {"name": "git", "labels": {"resource.cyclone.dev/template": "true"}},
            "spec": {
                "type": "Git",
                "resolver": "tmpl/git",
                "parameters": [{"name": "SCM_DEPTH", "value": "1"}],
            },
        }
    )
    pod = build_stage_pod(context(resource_types={"Git": template}))
    pull = container(pod, "csc-pull-src")
    assert pull["image"] == "tmpl/git"
    assert env_of(pull)["SCM_DEPTH"] == "1"
    options = PodBuildOptions(resolver_image_prefix="registry.local/cyclone/resolver-")
    pod = build_stage_pod(context(options=options))
    assert container(pod, "csc-pull-src")["image"] == (
        f"registry.local/cyclone/resolver-git:{IMAGE_TAG}")


def test_persistent_resource_uses_its_own_claim():
    persistent = git_resource(
        persistent={"pvc": "cache-pvc", "path": "/git/app", "pullPolicy": "IfNotExist"}
    )
    pod = build_stage_pod(context(resources={"src": persistent}))
    assert_valid_pod(pod)
    pull = container(pod, "csc-pull-src")
    data = mounts_of(pull)["/workspace/data"]
    assert data["subPath"] == "git/app"
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == data["name"])
    assert volume["persistentVolumeClaim"] == {"claimName": "cache-pvc"}
    assert env_of(pull)["PULL_POLICY"] == "IfNotExist"
    assert mounts_of(pod["spec"]["containers"][0])["/workspace/src"]["name"] == data["name"]


def test_missing_resource_is_an_error():
    with pytest.raises(StagePodError, match='resource "src" not found'):
        build_stage_pod(context(resources={}))


def test_input_resource_without_path_mounts_under_workspace():
    s = pod_stage({"containers": [{"image": "a"}]}, inputs={"resources": [{"name": "src"}]})
    pod = build_stage_pod(context(stage=s))
    assert "/workspace/src" in mounts_of(pod["spec"]["containers"][0])


def test_artifacts_are_directories_on_the_data_volume():
    s = pod_stage(
        {"containers": [{"image": "a"}]},
        name="test",
        inputs={"artifacts": [{"name": "bin", "path": "/in/bin"}]},
        outputs={"artifacts": [{"name": "report", "path": "/out/report"}]},
    )
    wf = workflow(
        [
            {"name": "build"},
            {
                "name": "test",
                "depends": ["build"],
                "artifacts": [{"name": "bin", "source": "build/binary"}],
            },
        ]
    )
    pod = build_stage_pod(context(stage=s, workflow=wf, resources={}))
    assert_valid_pod(pod)
    mounts = mounts_of(pod["spec"]["containers"][0])
    assert mounts["/in/bin"]["subPath"] == "workflowruns/ci-run-1/stages/build/artifacts/binary"
    assert mounts["/out/report"]["subPath"] == (
        "workflowruns/ci-run-1/stages/test/artifacts/report"
    )
    assert mounts["/in/bin"]["name"] == "cyclone-data"


def test_input_artifact_source_may_come_from_the_stage():
    s = pod_stage(
        {"containers": [{"image": "a"}]},
        inputs={"artifacts": [{"name": "bin", "path": "/in", "source": "compile/out"}]},
    )
    pod = build_stage_pod(context(stage=s, resources={}))
    assert mounts_of(pod["spec"]["containers"][0])["/in"]["subPath"].endswith(
        "/stages/compile/artifacts/out"
    )


def test_input_artifact_without_source_is_an_error():
    s = pod_stage(
        {"containers": [{"image": "a"}]}, inputs={"artifacts": [{"name": "bin", "path": "/in"}]}
    )
    with pytest.raises(StagePodError, match='input artifact "bin" has no source'):
        build_stage_pod(context(stage=s, resources={}))


def image_resource():
    return Resource.from_object(
        {
            "apiVersion": "cyclone.dev/v1alpha1",
            "kind": "Resource",
            "metadata": {"name": "img"},
            "spec": {
                "type": "Image",
                "parameters": [{"name": "REGISTRY", "value": "registry.local"}],
            },
        }
    )


def test_output_resources_are_pushed_after_the_workload_succeeds():
    s = pod_stage(
        {"containers": [{"image": "a", "command": ["make"], "args": ["image"]}]},
        outputs={"resources": [{"name": "img", "path": "/workspace/image"}]},
    )
    pod = build_stage_pod(context(stage=s, resources={"img": image_resource()}))
    assert_valid_pod(pod)
    workload, push = pod["spec"]["containers"]
    assert workload["command"][:2] == ["sh", "-c"]
    assert "/cyclone/results/__exit__" in workload["command"][2]
    assert workload["command"][3:] == ["--", "make"]
    assert workload["args"] == ["image"]
    assert mounts_of(workload)["/workspace/image"]["subPath"] == (
        "workflowruns/ci-run-1/resources/img"
    )
    assert push["name"] == "csc-push-img"
    assert push["image"] == f"cyclone/resolver-image:{IMAGE_TAG}"
    assert "/entrypoint.sh push" in push["command"][2]
    assert "/cyclone/results/__exit__" in push["command"][2]
    assert mounts_of(push)["/workspace/data"]["subPath"] == "workflowruns/ci-run-1/resources/img"
    assert "/cyclone/results" in mounts_of(push)
    assert env_of(push)["REGISTRY"] == "registry.local"


def test_output_resources_need_a_workload_command():
    s = pod_stage(
        {"containers": [{"image": "a", "args": ["x"]}]},
        outputs={"resources": [{"name": "img"}]},
    )
    with pytest.raises(StagePodError, match="need the workload container to set command"):
        build_stage_pod(context(stage=s, resources={"img": image_resource()}))


def test_resources_come_from_container_then_workflow_then_project():
    s = simple(
        [
            {"image": "a", "resources": {"requests": {"cpu": "2"}}},
            {"name": "db", "image": "b"},
        ]
    )
    wf = workflow(resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}})
    proj = project({"requests.cpu": "500m", "limits.cpu": "1", "memory": "256Mi", "pods": "10"})
    pod = build_stage_pod(context(stage=s, workflow=wf, project=proj, resources={}))
    workload, sidecar = pod["spec"]["containers"]
    assert workload["resources"] == {
        "requests": {"cpu": "2", "memory": "1Gi"},
        "limits": {"memory": "2Gi", "cpu": "1"},
    }
    assert sidecar["resources"] == {
        "requests": {"memory": "1Gi", "cpu": "500m"},
        "limits": {"memory": "2Gi", "cpu": "1"},
    }


def test_own_limit_without_request_is_not_exceeded_by_default_request():
    s = simple([{"image": "a", "resources": {"limits": {"cpu": "100m"}}}])
    proj = project({"requests.cpu": "1"})
    pod = build_stage_pod(context(stage=s, project=proj, resources={}))
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "100m"},
        "requests": {"cpu": "100m"},
    }


def test_cyclone_containers_use_their_own_resources_when_given():
    options = PodBuildOptions(cyclone_container_resources={"requests": {"cpu": "10m"}})
    s = pod_stage(
        {
            "containers": [{"image": "a"}],
            "initContainers": [{"name": "prep", "image": "alpine"}],
        },
        inputs={"resources": [{"name": "src"}]},
    )
    quota = project({"requests.cpu": "1"})
    pod = build_stage_pod(context(stage=s, options=options, project=quota))
    assert container(pod, "csc-pull-src")["resources"] == {"requests": {"cpu": "10m"}}
    assert pod["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "1"}}
    assert container(pod, "prep")["resources"] == {"requests": {"cpu": "1"}}


@pytest.mark.parametrize(
    ("pod_sa", "run_sa", "default", "expected"),
    [
        ("own", "run-sa", "dflt", "own"),
        (None, "run-sa", "dflt", "run-sa"),
        (None, None, "dflt", "dflt"),
        (None, None, None, None),
    ],
)
def test_service_account_precedence(pod_sa, run_sa, default, expected):
    spec = {"containers": [{"image": "a"}]}
    if pod_sa:
        spec["serviceAccountName"] = pod_sa
    r = run(serviceAccount=run_sa) if run_sa else run()
    pod = build_stage_pod(
        context(stage=pod_stage(spec), run=r, resources={}, default_service_account=default)
    )
    assert pod["spec"].get("serviceAccountName") == expected


def test_run_volumes_follow_container_groups():
    r = run(
        volumes=[
            {"type": "HostPath", "path": "/var/cache", "mountPath": "/cache"},
            {
                "type": "PVC",
                "objectName": "shared",
                "path": "team",
                "subPath": "m2",
                "mountPath": "/root/.m2",
                "containerGroup": "Workload",
            },
            {"type": "Secret", "objectName": "creds", "mountPath": "/creds",
             "containerGroup": "Sidecar"},
            {"type": "ConfigMap", "objectName": "cfg", "mountPath": "/cfg", "subPath": "a.yaml"},
        ]
    )
    s = simple([{"image": "a"}, {"name": "db", "image": "b"}])
    pod = build_stage_pod(context(stage=s, run=r, resources={}))
    assert_valid_pod(pod)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    workload, sidecar = pod["spec"]["containers"]
    wl, sc = mounts_of(workload), mounts_of(sidecar)
    assert set(wl) >= {"/cache", "/root/.m2", "/cfg"} and "/creds" not in wl
    assert set(sc) >= {"/cache", "/creds", "/cfg"} and "/root/.m2" not in sc
    assert volumes[wl["/cache"]["name"]]["hostPath"] == {"path": "/var/cache"}
    assert volumes[wl["/root/.m2"]["name"]]["persistentVolumeClaim"] == {"claimName": "shared"}
    assert wl["/root/.m2"]["subPath"] == "team/m2"
    assert volumes[sc["/creds"]["name"]]["secret"] == {"secretName": "creds"}
    assert volumes[wl["/cfg"]["name"]]["configMap"] == {"name": "cfg"}
    assert wl["/cfg"]["subPath"] == "a.yaml"


def test_without_pvc_the_data_volume_is_an_empty_dir():
    pod = build_stage_pod(context(pvc=None))
    assert_valid_pod(pod)
    assert {"name": "cyclone-data", "emptyDir": {}} in pod["spec"]["volumes"]


def test_user_volumes_init_containers_and_metadata_are_kept():
    s = pod_stage(
        {
            "containers": [{"image": "a"}],
            "initContainers": [{"name": "prep", "image": "alpine"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
        inputs={"resources": [{"name": "src"}]},
        metadata={"labels": {"team": "web"}, "annotations": {"note": "x"}},
    )
    pod = build_stage_pod(context(stage=s))
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["csc-pull-src", "prep"]
    assert {"name": "scratch", "emptyDir": {}} in pod["spec"]["volumes"]
    assert pod["metadata"]["labels"]["team"] == "web"
    assert pod["metadata"]["annotations"]["note"] == "x"


def test_upstream_outputs_are_rendered():
    s = simple([{"image": "a", "command": ["echo", "${stages.compile.outputs.version}"]}])
    pod = build_stage_pod(
        context(stage=s, resources={}, upstream_outputs={"compile": {"version": "9"}})
    )
    assert pod["spec"]["containers"][0]["command"] == ["echo", "9"]


def test_delegation_stage_has_no_pod():
    s = stage("build", pod=None)
    s.spec.pod = None
    with pytest.raises(StagePodError, match="not a pod stage"):
        build_stage_pod(context(stage=s))


def test_pod_without_containers_is_an_error():
    with pytest.raises(StagePodError, match="containers is empty"):
        build_stage_pod(context(stage=simple([]), resources={}))


def test_cluster_is_annotated_and_project_label_falls_back_to_project():
    wf = workflow()
    wf.metadata.labels = {}
    pod = build_stage_pod(context(workflow=wf, project=project(), cluster="worker-1"))
    assert pod["metadata"]["labels"]["project.cyclone.dev/name"] == "shop"
    assert pod["metadata"]["annotations"]["workflowrun.cyclone.dev/cluster"] == "worker-1"


def git_type_template():
    return Resource.from_object(
        {
            "apiVersion": "cyclone.dev/v1alpha1",
            "kind": "Resource",
            "metadata": {"name": "git", "labels": {"resource.cyclone.dev/template": "true"}},
            "spec": {
                "type": "Git",
                "parameters": [{"name": "SCM_URL"}, {"name": "SCM_AUTH"}],
                "bind": {
                    "integrationType": "SCM",
                    "paramBindings": {"SCM_URL": "scm.server", "SCM_AUTH": "scm.token"},
                },
            },
        }
    )


def test_resource_type_binds_parameters_from_an_integration():
    bare = git_resource()
    bare.spec.parameters = [p for p in bare.spec.parameters if p.name == "SCM_REPO"]
    integrations = {"SCM": {"type": "SCM", "scm": {"server": "https://git.local", "token": "t"}}}
    pod = build_stage_pod(
        context(
            resources={"src": bare},
            resource_types={"Git": git_type_template()},
            resource_integrations={"src": integrations},
        )
    )
    env = env_of(container(pod, "csc-pull-src"))
    assert env["SCM_URL"] == "https://git.local"
    assert env["SCM_AUTH"] == "t"
    assert env["SCM_REPO"] == "acme/app"


def test_resource_values_win_over_integration_values():
    integrations = {"SCM": {"type": "SCM", "scm": {"server": "https://git.local"}}}
    pod = build_stage_pod(
        context(resource_types={"Git": git_type_template()},
                resource_integrations={"src": integrations})
    )
    assert env_of(container(pod, "csc-pull-src"))["SCM_URL"] == "https://github.com"


def test_missing_integration_leaves_parameters_empty():
    bare = git_resource()
    bare.spec.parameters = []
    pod = build_stage_pod(
        context(resources={"src": bare}, resource_types={"Git": git_type_template()})
    )
    assert env_of(container(pod, "csc-pull-src"))["SCM_URL"] == ""


def test_a_resource_both_pulled_and_pushed_is_mounted_once():
    s = pod_stage(
        {"containers": [{"image": "a", "command": ["make"]}]},
        inputs={"resources": [{"name": "src", "path": "/src"}]},
        outputs={"resources": [{"name": "src", "path": "/src"}]},
    )
    pod = build_stage_pod(context(stage=s))
    assert_valid_pod(pod)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["c0", "csc-push-src"]


def test_two_volumes_at_one_path_are_an_error():
    s = pod_stage(
        {"containers": [{"image": "a"}]},
        inputs={"resources": [{"name": "src", "path": "/work"}]},
        outputs={"artifacts": [{"name": "out", "path": "/work"}]},
    )
    with pytest.raises(StagePodError, match='container "c0": two volumes at /work'):
        build_stage_pod(context(stage=s))


def http_resource(name: str, **parameters: str) -> Resource:
    return Resource.from_object({
        "apiVersion": "cyclone.dev/v1alpha1", "kind": "Resource",
        "metadata": {"name": name, "namespace": META_NS},
        "spec": {"type": "Http",
                 "parameters": [{"name": k, "value": v} for k, v in parameters.items()]},
    })


def test_http_push_uploads_to_the_run_with_its_token_unless_the_resource_says_where():
    from cyclone.engine.core.podbuilder import ArtifactUpload

    s = pod_stage({"containers": [{"image": "alpine", "command": ["true"]}]},
                  outputs={"resources": [{"name": "pkg", "path": "/out"},
                                         {"name": "mirror", "path": "/mirror"}]})
    resources = {"pkg": http_resource("pkg", URL=""),
                 "mirror": http_resource("mirror", URL="https://files.example/up", TOKEN="t")}
    upload = ArtifactUpload(url="http://server/apis/v1alpha1/projects/p/workflows/w/"
                                "workflowruns/r/artifacts", token="cyu.devops.abc")
    pod = build_stage_pod(context(stage=s, resources=resources, artifact_upload=upload))
    assert_valid_pod(pod)
    pkg, mirror = env_of(container(pod, "csc-push-pkg")), env_of(container(pod, "csc-push-mirror"))
    assert (pkg["URL"], pkg["TOKEN"], pkg["ARTIFACT"]) == (upload.url, upload.token,
                                                           "pkg.tar.gz")
    assert (mirror["URL"], mirror["TOKEN"]) == ("https://files.example/up", "t")
    without = build_stage_pod(context(stage=s, resources=resources))
    assert "TOKEN" not in env_of(container(without, "csc-push-pkg"))
