"""The SDK's examples (examples/sdk/) write the manifests of their YAML versions and, run on
a live `cyclone up` as a user runs them (server and token from the CLI context that `up`
wrote), end as the YAML versions do: same phases, same outputs. Both versions use the same
names in the same project, so the examples' apply updates what the YAML created. A
workflow of `@script` stages runs there too, followed with `watch`, its outputs and logs
read back."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from engine.gates import serve_git_repository
from support.live_up import LiveUp, cli_ok, live_up

from cyclone.sdk import (
    Client,
    Run,
    RunRequest,
    RunTimeout,
    Stage,
    StageChange,
    Workflow,
    emit,
    script,
)

EXAMPLES = Path(__file__).parents[2] / "examples"


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sdk_example_{name}",
                                                  EXAMPLES / "sdk" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def _without_empty(value):
    if isinstance(value, dict):
        kept = {k: _without_empty(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def semantic(doc: dict) -> dict:
    """What the server makes of a manifest: no namespace (the tenant's), empty fields
    left out, a stage's depends as a set, a workflow named by its name alone."""
    doc = copy.deepcopy(doc)
    doc["metadata"].pop("namespace", None)
    spec = doc.get("spec") or {}
    for item in spec.get("stages") or []:
        if "depends" in item:
            item["depends"] = sorted(item["depends"])
    if "workflowRef" in spec:
        spec["workflowRef"] = {"name": spec["workflowRef"]["name"]}
    return _without_empty(doc)


def definitions(docs: list[dict]) -> list[dict]:
    return [semantic(d) for d in docs if d["kind"] not in ("Project", "WorkflowRun")]


def test_the_sdk_diamond_writes_the_manifests_of_diamond_yaml() -> None:
    wf = example("diamond").diamond("demo")
    assert definitions(wf.manifests()) == definitions(documents("diamond.yaml"))


def test_the_sdk_ci_pipeline_writes_the_manifests_of_ci_pipeline_yaml() -> None:
    wf = example("ci").ci("demo")
    docs = documents("ci-pipeline.yaml")
    assert definitions(wf.manifests()) == definitions(docs)
    yaml_run = next(d for d in docs if d["kind"] == "WorkflowRun")
    sdk_run = RunRequest(wf, name="ci-run-1", timeout="10m",
                         variables={"REPO_URL": "git://127.0.0.1:9418/cyclone-demo-repo"})
    assert semantic(sdk_run.to_dict()) == semantic(yaml_run)


@script
def release_version():
    emit(version="2.0.1")


@script
def greet(who, times: int = 1):
    for _ in range(times):
        print(f"hello {who}")
    emit(greeting=f"hello {who} x{times}")


def python_workflow() -> Workflow:
    with Workflow("py", project="sdk") as wf:
        release = release_version()
        greet(who=release.outputs.version)
    return wf


@dataclass
class Live:
    up: LiveUp
    client: Client
    head: str
    printed: dict[str, str]
    """What each example script printed, by example name."""
    runs: dict[str, Run]
    """Finished runs: `yaml-diamond`, `yaml-ci`, `sdk-diamond`, `sdk-ci` and `py`."""
    changes: list[StageChange]


def make_demo_repo(repo: Path) -> str:
    subprocess.run(["sh", str(EXAMPLES / "make-demo-repo.sh"), str(repo)], check=True,
                   capture_output=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def created_run(printed: str) -> str:
    line = next(li for li in printed.splitlines() if li.startswith("workflowrun/"))
    return line.split()[0].split("/", 1)[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("sdk")
    repo = tmp / "repo"
    head = make_demo_repo(repo)
    url = serve_git_repository(repo, tmp / "served")
    with live_up(tmp / "up") as up:
        ci_yaml = (EXAMPLES / "ci-pipeline.yaml").read_text().replace(
            "git://127.0.0.1:9418/cyclone-demo-repo", url)
        (tmp / "ci.yaml").write_text(ci_yaml)
        cli_ok(up, "apply", "-f", str(EXAMPLES / "diamond.yaml"))
        cli_ok(up, "apply", "-f", str(tmp / "ci.yaml"))
        scripts = {name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / "sdk" / f"{name}.py"), "--apply", "--run", *extra],
            env=up.cli_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
            for name, extra in (("diamond", []), ("ci", ["--repo-url", url]))}
        client = Client(server=up.url, token=up.token, tenant="system")
        wf = python_workflow()
        client.apply("sdk", wf)
        py = client.run(wf, parameters={"greet": {"times": "3"}})
        changes = list(py.watch())
        printed = {}
        for name, process in scripts.items():
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, (out, err)
            assert "Traceback" not in err
            printed[name] = out
        runs = {
            "yaml-diamond": client.get_run("diamond-run-1", project="demo", workflow="diamond"),
            "yaml-ci": client.get_run("ci-run-1", project="demo", workflow="ci"),
            "sdk-diamond": client.get_run(created_run(printed["diamond"]), project="demo",
                                          workflow="diamond"),
            "sdk-ci": client.get_run(created_run(printed["ci"]), project="demo", workflow="ci"),
            "py": py,
        }
        for run in runs.values():
            run.wait(timeout=60)
        yield Live(up, client, head, printed, runs, changes)
        client.close()


def phases(run: Run) -> dict[str, str]:
    return {"overall": run.phase, **run.stages()}


def test_the_diamond_ends_the_same_from_yaml_and_from_the_sdk(live: Live) -> None:
    for which in ("yaml-diamond", "sdk-diamond"):
        run = live.runs[which]
        assert phases(run) == {"overall": "Succeeded", "version": "Succeeded",
                               "build-linux": "Succeeded", "build-mac": "Succeeded",
                               "report": "Succeeded"}, which
        v = run.outputs("version")["version"]
        assert run.outputs("build-linux") == {"binary": f"app-{v}-linux"}
        assert run.outputs("report") == {"release": f"app-{v}-linux,app-{v}-mac"}
    assert f"  report.release = {live.runs['sdk-diamond'].outputs('report')['release']}" \
        in live.printed["diamond"]


def test_the_ci_pipeline_ends_the_same_from_yaml_and_from_the_sdk(live: Live) -> None:
    yaml_run, sdk_run = live.runs["yaml-ci"], live.runs["sdk-ci"]
    assert phases(sdk_run) == phases(yaml_run) == {
        "overall": "Succeeded", "ci-build": "Succeeded", "ci-test": "Succeeded",
        "ci-package": "Succeeded"}
    for stage in ("ci-build", "ci-test"):
        assert sdk_run.outputs(stage) == yaml_run.outputs(stage)
    assert sdk_run.outputs("ci-test") == {"LastCommitID": live.head, "passed": "3",
                                          "failed": "0"}
    package = sdk_run.outputs("ci-package")
    assert package["package"] == yaml_run.outputs("ci-package")["package"] == "greet.tgz"
    assert int(package["size"]) > 0


def test_script_stages_run_their_functions_with_arguments_from_outputs_and_run_parameters(
        live: Live) -> None:
    run = live.runs["py"]
    assert phases(run) == {"overall": "Succeeded", "release-version": "Succeeded",
                           "greet": "Succeeded"}
    assert run.outputs("release-version") == {"version": "2.0.1"}
    assert run.outputs("greet") == {"greeting": "hello 2.0.1 x3"}
    assert run.logs("greet") == "hello 2.0.1\n" * 3


def test_watch_yields_each_stage_change_until_the_run_ends(live: Live) -> None:
    seen = [(c.stage, c.phase) for c in live.changes]
    assert all(phase != "Pending" for _, phase in seen), seen
    for stage in ("release-version", "greet"):
        assert (stage, "Succeeded") in seen
        assert seen.index((stage, "Succeeded")) == max(
            i for i, (s, _) in enumerate(seen) if s == stage)
    assert seen.index(("release-version", "Succeeded")) < seen.index(("greet", "Succeeded"))


def test_wait_gives_up_after_its_timeout_and_stop_cancels_the_run(live: Live) -> None:
    with Workflow("nap", project="sdk") as wf:
        Stage("nap", image="alpine:3.20", script="sleep 60")
    live.client.apply("sdk", wf)
    run = live.client.run(wf)
    still = r"^workflowrun nap-\w+ still (Pending|Running) after 0.5s$"
    with pytest.raises(RunTimeout, match=still):
        run.wait(timeout=0.5)
    run.stop(force=True)
    assert run.wait(timeout=30) == "Cancelled"
    assert run.stages() == {"nap": "Cancelled"}


def test_an_example_that_cannot_reach_the_server_says_so_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CYCLONE_CONFIG": str(tmp_path / "none.yaml"),
           "CYCLONE_SERVER": "http://127.0.0.1:9", "CYCLONE_TOKEN": "t"}
    done = subprocess.run([sys.executable, str(EXAMPLES / "sdk" / "diamond.py"), "--apply"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr == ("error: cannot reach the Cyclone server at http://127.0.0.1:9: "
                           "is `cyclone up` running?\n")
