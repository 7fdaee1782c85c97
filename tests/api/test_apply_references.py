"""What a Workflow names when it is applied: its stages must exist, and the outputs its
stages read must come from stages upstream of them; errors name the field and suggest."""

from __future__ import annotations

from cyclone.api.references import workflow_reference_errors
from cyclone.api.validation import FieldError


def workflow(*stages: dict) -> dict:
    return {"metadata": {"name": "ci"}, "spec": {"stages": list(stages)}}


def reading(command: str) -> dict:
    return {"spec": {"pod": {"spec": {"containers": [{"image": "alpine",
                                                      "command": ["sh", "-c", command]}]}}}}


def test_a_workflow_whose_stages_all_exist_and_read_upstream_outputs_is_valid():
    stages = {"build": reading("true"), "test": reading("echo ${stages.build.outputs.tag}")}
    wf = workflow({"name": "build"}, {"name": "test", "depends": ["build"]})
    assert workflow_reference_errors(wf, stages, "project p") == []


def test_a_missing_stage_is_named_by_field_with_the_nearest_existing_stage():
    stages = {"build": reading("true"), "deploy": reading("true")}
    wf = workflow({"name": "deploy"}, {"name": "biuld"})
    assert workflow_reference_errors(wf, stages, "project p") == [FieldError(
        "spec.stages[1].name", "stage 'biuld' not found in project p (did you mean 'build'?)")]


def test_a_suggestion_never_names_a_stage_the_workflow_already_uses():
    stages = {"build": reading("true")}
    wf = workflow({"name": "build"}, {"name": "buil"})
    assert workflow_reference_errors(wf, stages, "project p") == [FieldError(
        "spec.stages[1].name", "stage 'buil' not found in project p")]


def test_an_output_of_a_stage_that_is_not_upstream_is_refused():
    stages = {"a": reading("true"), "b": reading("echo ${stages.a.outputs.x}")}
    wf = workflow({"name": "a"}, {"name": "b"})
    assert workflow_reference_errors(wf, stages, "project p") == [FieldError(
        "spec.stages[1]",
        "stage 'b' uses ${stages.a.outputs.x}: stage 'a' is not upstream of 'b' "
        "(add it to depends)")]


def test_an_output_of_a_stage_outside_the_workflow_suggests_an_upstream_stage():
    stages = {"build": reading("true"), "test": reading("echo ${stages.biuld.outputs.x}")}
    wf = workflow({"name": "build"}, {"name": "test", "depends": ["build"]})
    assert workflow_reference_errors(wf, stages, "project p") == [FieldError(
        "spec.stages[1]",
        "stage 'test' uses ${stages.biuld.outputs.x}: no stage 'biuld' in the workflow "
        "(did you mean 'build'?)")]


def test_suggestions_come_from_the_given_names_when_given():
    stages = {"build": reading("true"), "maven-build": reading("true")}
    wf = workflow({"name": "biuld"})
    assert workflow_reference_errors(wf, stages, "project p", ["build"]) == [FieldError(
        "spec.stages[0].name", "stage 'biuld' not found in project p (did you mean 'build'?)")]
    assert workflow_reference_errors(wf, stages, "project p", []) == [FieldError(
        "spec.stages[0].name", "stage 'biuld' not found in project p")]


def test_an_output_of_a_stage_upstream_through_another_is_valid():
    stages = {"a": reading("true"), "b": reading("true"),
              "c": reading("echo ${stages.a.outputs.x}")}
    wf = workflow({"name": "a"}, {"name": "b", "depends": ["a"]}, {"name": "c", "depends": ["b"]})
    assert workflow_reference_errors(wf, stages, "project p") == []
