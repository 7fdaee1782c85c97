"""The workflows of examples/ run to success on the embedded cluster and host runtime."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from .gates import serve_git_repository
from .harness import outputs

EXAMPLES = Path(__file__).parents[2] / "examples"


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def run_name(docs: list[dict]) -> str:
    return next(d["metadata"]["name"] for d in docs if d["kind"] == "WorkflowRun")


def make_demo_repo(repo: Path) -> str:
    """The example repository at ``repo``; returns its HEAD commit."""
    subprocess.run(["sh", str(EXAMPLES / "make-demo-repo.sh"), str(repo)], check=True,
                   capture_output=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


async def test_ci_pipeline_example_checks_out_builds_tests_and_packages(env, tmp_path):
    repo = tmp_path / "repo"
    head = make_demo_repo(repo)
    url = serve_git_repository(repo, tmp_path / "served")
    docs = documents("ci-pipeline.yaml")
    for doc in docs:
        if doc["kind"] == "WorkflowRun":
            doc["spec"]["globalVariables"] = [{"name": "REPO_URL", "value": url}]
    await env.apply(*docs)
    run = await env.wait_phase(run_name(docs), "Succeeded", within=60)
    assert outputs(run, "ci-build")["LastCommitID"] == head
    assert outputs(run, "ci-test") | {"LastCommitID": head} == {
        "LastCommitID": head, "passed": "3", "failed": "0",
    }
    assert outputs(run, "ci-package")["package"] == "greet.tgz"


async def test_diamond_example_passes_outputs(env):
    docs = documents("diamond.yaml")
    await env.apply(*docs)
    run = await env.wait_phase(run_name(docs), "Succeeded")
    version = outputs(run, "version")["version"]
    assert outputs(run, "report")["release"] == f"app-{version}-linux,app-{version}-mac"
