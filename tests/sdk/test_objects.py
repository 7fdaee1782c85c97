"""The SDK's objects: what they write, the edges they add, and what they refuse."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from cyclone.api import validate_object
from cyclone.cli.config import CliSettings
from cyclone.sdk import (
    APIError,
    Client,
    CronTrigger,
    ManifestError,
    Notification,
    Project,
    Receiver,
    Resource,
    RunRequest,
    SCMTrigger,
    Stage,
    WebhookTrigger,
    Workflow,
    to_yaml,
)

IMAGE = "alpine:3.20"


def depends(wf: Workflow) -> dict[str, list[str]]:
    return {item["name"]: item.get("depends", []) for item in wf.to_dict()["spec"]["stages"]}


def test_an_output_reference_renders_as_the_engine_reads_it_wherever_it_is_used() -> None:
    build = Stage("build", image=IMAGE, script="echo version:1 > /cyclone/results/__result__")
    ref = build.outputs.version
    assert str(ref) == "${stages.build.outputs.version}"
    assert f"v{ref}" == "v${stages.build.outputs.version}"
    assert "app-" + ref == "app-${stages.build.outputs.version}"
    assert str(build.outputs["image-tag"]) == "${stages.build.outputs.image-tag}"
    use = Stage("use", image=IMAGE, command=["echo", ref], args=[ref], env={"V": ref},
                arguments={"version": ref})
    container = use.to_dict()["spec"]["pod"]["spec"]["containers"][0]
    assert container["command"] == ["echo", "${stages.build.outputs.version}"]
    assert container["args"] == ["${stages.build.outputs.version}"]
    assert container["env"] == [{"name": "V", "value": "${stages.build.outputs.version}"}]
    assert use.to_dict()["spec"]["pod"]["inputs"]["arguments"] == [
        {"name": "version", "value": "${stages.build.outputs.version}"}]


def test_edges_from_shift_operators_in_every_form() -> None:
    with Workflow("shapes") as wf:
        a, b, c, d, e = (Stage(n, image=IMAGE, script="true") for n in "abcde")
        assert (a >> b) is b
        assert b >> [c, d] == [c, d]
        assert ([c, d] >> e) is e
    assert depends(wf) == {"a": [], "b": ["a"], "c": ["b"], "d": ["b"], "e": ["c", "d"]}
    x, y, z = (Stage(n, image=IMAGE, script="true") for n in "xyz")
    x >> [y] >> z
    assert (y.depends, z.depends) == (["x"], ["y"])


def test_stages_join_the_workflow_they_are_made_or_linked_in() -> None:
    outside = Stage("outside", image=IMAGE, script="true")
    with Workflow("outer") as outer:
        first = Stage("first", image=IMAGE, script="true")
        with Workflow("inner") as inner:
            Stage("nested", image=IMAGE, script="true")
        outside >> first
    assert [s.name for s in outer.stages] == ["first", "outside"]
    assert [s.name for s in inner.stages] == ["nested"]
    later = Stage("later", image=IMAGE, script="true", depends=[first])
    assert later not in outer.stages and later.depends == ["first"]


def test_reading_an_output_adds_the_edge_unless_the_stage_is_already_upstream() -> None:
    with Workflow("refs") as wf:
        version = Stage("version", image=IMAGE, script="echo version:1 > /x")
        build = Stage("build", image=IMAGE, script=f"echo {version.outputs.version}")
        test = Stage("test", image=IMAGE, env={"V": version.outputs.version},
                     script=f"echo {build.outputs.binary}")
        build >> test
        lone = Stage("lone", image=IMAGE, args=[version.outputs.version], command=["echo"])
    assert depends(wf) == {"version": [], "build": ["version"], "test": ["build"],
                           "lone": ["version"]}
    assert build.depends == [] and lone.depends == []


def test_an_input_artifact_names_its_source_and_depends_on_it() -> None:
    with Workflow("arts") as wf:
        build = Stage("build", image=IMAGE, script="true", output_artifacts={"bin": "/out"})
        ship = Stage("ship", image=IMAGE, script="true",
                     input_artifacts=[build.artifact("bin").at("/in", name="binary")])
    item = wf.to_dict()["spec"]["stages"][1]
    assert item == {"name": "ship", "depends": ["build"],
                    "artifacts": [{"name": "binary", "source": "build/bin"}]}
    assert ship.to_dict()["spec"]["pod"]["inputs"]["artifacts"] == [
        {"name": "binary", "path": "/in"}]


def test_a_workflow_writes_resources_stages_itself_and_triggers_in_apply_order() -> None:
    source = Resource.git("src", url="https://git.example/app.git", revision="main",
                          auth="${secrets.cyclone-system:git/data.token}")
    with Workflow("ci", project="demo", variables={"LEVEL": "2"},
                  notification=Notification("Failure", [Receiver("Webhook", ["http://h/n"])]),
                  resources={"requests": {"cpu": "100m"}}) as wf:
        Stage("build", image=IMAGE, script="make", input_resources=[source.at("/src")],
                      requests={"cpu": "200m"}, limits={"memory": "1Gi"}, trivial=True)
        CronTrigger("nightly", "0 2 * * *", timezone="Europe/Paris", variables={"LEVEL": "3"})
        SCMTrigger("on-push", "acme/app", secret="s3cret", push=["main"], pull_request=True)
        WebhookTrigger("hook")
    docs = wf.manifests()
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Resource", "src"), ("Stage", "build"), ("Workflow", "ci"),
        ("WorkflowTrigger", "nightly"), ("WorkflowTrigger", "on-push"),
        ("WorkflowTrigger", "hook")]
    assert all(d["metadata"]["labels"] == {"project.cyclone.dev/name": "demo"} for d in docs)
    assert all(validate_object(d) == [] for d in docs)
    assert docs[0]["spec"]["parameters"] == [
        {"name": "SCM_URL", "value": "https://git.example/app.git"},
        {"name": "SCM_REVISION", "value": "main"},
        {"name": "SCM_AUTH", "value": "${secrets.cyclone-system:git/data.token}"}]
    pod = docs[1]["spec"]["pod"]
    assert pod["inputs"]["resources"] == [{"name": "src", "type": "Git", "path": "/src"}]
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "200m"}, "limits": {"memory": "1Gi"}}
    assert docs[2]["spec"] == {
        "stages": [{"name": "build", "trivial": True}],
        "globalVariables": [{"name": "LEVEL", "value": "2"}],
        "notification": {"policy": "Failure",
                         "receivers": [{"type": "Webhook", "addresses": ["http://h/n"]}]},
        "resources": {"requests": {"cpu": "100m"}}}
    ref = {"apiVersion": "cyclone.dev/v1alpha1", "kind": "Workflow", "name": "ci"}
    assert docs[3]["spec"] == {"type": "Cron", "cron": {"schedule": "0 2 * * *",
                                                        "timezone": "Europe/Paris"},
                               "workflowRef": ref,
                               "globalVariables": [{"name": "LEVEL", "value": "3"}]}
    assert docs[4]["spec"]["scm"] == {
        "secret": "s3cret", "repo": "acme/app",
        "push": {"enabled": True, "branches": ["main"]},
        "pullRequest": {"enabled": True, "branches": []}}
    assert docs[5]["spec"] == {"type": "Webhook", "workflowRef": ref}
    assert list(yaml.safe_load_all(wf.to_yaml())) == docs
    assert next(yaml.safe_load_all(to_yaml(Project("demo"), wf))) == {
        "apiVersion": "cyclone.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "demo"}, "spec": {}}


def test_a_run_request_carries_parameters_variables_bounds_and_timeout() -> None:
    with Workflow("wf", project="p") as wf:
        a = Stage("a", image=IMAGE, script="echo {{ who }}", arguments={"who": "world"})
        b = Stage("b", image=IMAGE, script="true")
        a >> b
    run = wf.run_request(name="wf-1", parameters={a: {"who": "sdk"}},
                         variables={"V": "1"}, start_stages=[a], end_stages=["b"],
                         timeout="30m").to_dict()
    assert run["metadata"] == {"name": "wf-1", "labels": {
        "project.cyclone.dev/name": "p", "workflow.cyclone.dev/name": "wf"}}
    assert run["spec"] == {
        "workflowRef": {"apiVersion": "cyclone.dev/v1alpha1", "kind": "Workflow", "name": "wf"},
        "timeout": "30m", "globalVariables": [{"name": "V", "value": "1"}],
        "stages": [{"name": "a", "parameters": [{"name": "who", "value": "sdk"}]}],
        "startStages": ["a"], "endStages": ["b"]}
    assert RunRequest("wf").name.startswith("wf-")


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Stage("build", script="make").to_dict(),
     "Stage 'build': spec.pod.spec.containers[0].image: required"),
    (lambda: Stage("Build", image=IMAGE, script="make").to_dict(),
     "Stage 'Build': metadata.name: "),
    (lambda: Stage("b", image=IMAGE, script="x", command=["y"]).to_dict(),
     "Stage 'b': spec.pod.spec.containers[0].command: give either command or script"),
    (lambda: Workflow("w", stages=[Stage("a", image=IMAGE, script="true", depends=["nope"])]
                      ).to_dict(),
     "Workflow 'w': spec.stages[0].depends[0]: unknown stage \"nope\""),
    (lambda: Workflow("w", stages=[Stage("a", image=IMAGE, script="true", depends=["b"]),
                                   Stage("b", image=IMAGE, script="true", depends=["a"])]
                      ).to_dict(),
     "Workflow 'w': spec.stages[0].depends: cycle a -> b -> a"),
    (lambda: Workflow("w", stages=[Stage("a", image=IMAGE, script="echo ${stages.gone.outputs.k}")]
                      ).to_dict(),
     "Workflow 'w': spec.stages[0]: stage 'a' uses ${stages.gone.outputs.k}: no stage 'gone'"),
    (lambda: CronTrigger("t", "every day", workflow="w").to_dict(),
     "WorkflowTrigger 't': spec.cron.schedule: "),
    (lambda: RunRequest("w", name="w-1", timeout="soon").to_dict(),
     "WorkflowRun 'w-1': spec.timeout: "),
    (lambda: Resource("r", "").to_dict(), "Resource 'r': spec.type: required"),
])
def test_an_object_the_server_would_refuse_raises_one_line_naming_the_field(make, message) -> None:
    with pytest.raises(ManifestError) as caught:
        make()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value) and caught.value.errors


def test_two_different_stages_of_one_name_are_refused() -> None:
    with Workflow("w") as wf:
        first = Stage("same", image=IMAGE, script="true")
        wf.add(first)
        with pytest.raises(ManifestError, match="two different stages are named 'same'"):
            Stage("same", image=IMAGE, script="false")
    assert wf.stages == [first]


def test_the_sdk_loads_nothing_of_the_engine_server_or_kube_layers() -> None:
    code = ("import sys, cyclone.sdk; print(sorted(m for m in sys.modules if m.startswith("
            "('cyclone.engine', 'cyclone.server', 'cyclone.kube', 'cyclone.node', 'cyclone.up'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"


def test_a_client_reaches_the_server_of_a_cli_context_or_names_the_missing_one(
        tmp_path, monkeypatch) -> None:
    config = tmp_path / "config.yaml"
    (tmp_path / "token").write_text("tok-b\n")
    config.write_text(yaml.safe_dump({"current-context": "a", "contexts": [
        {"name": "a", "server": "http://a.example:7099", "tenant": "ta", "token": "tok-a"},
        {"name": "b", "server": "http://b.example:7099/", "tokenFile": str(tmp_path / "token")},
    ]}))
    monkeypatch.setenv("CYCLONE_CONFIG", str(config))
    for name in ("CYCLONE_SERVER", "CYCLONE_TENANT", "CYCLONE_TOKEN", "CYCLONE_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    with Client() as current:
        assert current.http.settings == CliSettings("http://a.example:7099", "ta", "tok-a")
    with Client.from_context("b") as named:
        assert named.http.settings == CliSettings("http://b.example:7099", None, "tok-b")
    monkeypatch.setenv("CYCLONE_TENANT", "te")
    with Client(server="http://flag.example") as mixed:
        assert mixed.http.settings == CliSettings("http://flag.example", "te", "tok-a")
    with pytest.raises(APIError, match=r"^no context named 'c' in .*config.yaml"):
        Client(context="c")
