"""Manifests as Cyclone v1.2 writes them in the UI: a template file that is one YAML
sequence is read as its objects, and an input resource declared by type and path only
shows under the name the engine pulls it by."""

from __future__ import annotations

from pathlib import Path

from cyclone.ui import stage_view
from cyclone.ui import workflow_view as view
from cyclone.ui.apply_docs import parse_documents

TEMPLATES = Path(__file__).parents[1] / "data" / "v12" / "templates"

STAGE = {"metadata": {"name": "test"}, "spec": {"pod": {
    "inputs": {"resources": [{"type": "Git", "path": "/workspace"}]},
    "spec": {"containers": [{"image": "alpine"}]}}}}
GIT = {"metadata": {"name": "git-workspace"}, "spec": {"type": "Git", "parameters": [
    {"name": "SCM_REPO", "value": "acme/app"}, {"name": "SCM_REVISION", "value": "master"}]}}


def test_the_stage_panel_lists_an_unnamed_input_under_its_derived_name() -> None:
    inputs = stage_view.stage_inputs(STAGE, {})
    assert inputs["resources"] == [{"name": "git-workspace", "type": "Git",
                                    "path": "/workspace"}]


def test_the_run_form_offers_a_revision_for_an_unnamed_git_input() -> None:
    workflow = {"metadata": {"name": "ci"}, "spec": {"stages": [{"name": "test"}]}}
    form = view.run_form(workflow, {"test": STAGE}, {"git-workspace": GIT})
    assert form.git == (view.GitInput("r:git-workspace", "git-workspace", "acme/app",
                                      "master", ""),)


def test_a_v12_template_file_pasted_in_apply_is_read_as_its_stages() -> None:
    objects = parse_documents((TEMPLATES / "build.yaml").read_text())
    assert [o["kind"] for o in objects] == ["Stage"] * 5
    assert objects[0]["metadata"]["name"] == "golang-build-template"
