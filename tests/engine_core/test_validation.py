from cyclone.engine.core.validation import validate_output_references

from .fixtures import stage, workflow


def echo_stage(name: str, command: str):
    return stage(name, pod={"spec": {"containers": [{"image": "alpine", "command": [command]}]}})


DIAMOND = [
    {"name": "a"},
    {"name": "b", "depends": ["a"]},
    {"name": "c", "depends": ["a"]},
    {"name": "d", "depends": ["b", "c"]},
]


def test_references_to_upstream_outputs_are_valid():
    stages = {
        "a": echo_stage("a", "true"),
        "b": echo_stage("b", "echo ${stages.a.outputs.x}"),
        "c": echo_stage("c", "true"),
        "d": echo_stage("d", "echo ${stages.a.outputs.x} ${stages.b.outputs.y}"),
    }
    assert validate_output_references(workflow(DIAMOND), stages) == []


def test_reference_to_a_sibling_is_rejected():
    stages = {"a": echo_stage("a", "true"), "b": echo_stage("b", "${stages.c.outputs.k}")}
    errors = validate_output_references(workflow(DIAMOND), stages)
    assert errors == [
        'stage "b": ${stages.c.outputs.k} refers to stage "c", which is not upstream of "b"'
    ]


def test_reference_to_self_downstream_or_unknown_stage_is_rejected():
    stages = {
        "a": echo_stage("a", "${stages.d.outputs.k} ${stages.a.outputs.k}"),
        "b": echo_stage("b", "${stages.zz.outputs.k}"),
    }
    errors = validate_output_references(workflow(DIAMOND), stages)
    assert 'stage "a": ${stages.d.outputs.k} refers to stage "d", which is not upstream of "a"' in (
        errors
    )
    assert 'stage "a": ${stages.a.outputs.k} refers to stage "a", which is not upstream of "a"' in (
        errors
    )
    assert 'stage "b": ${stages.zz.outputs.k} refers to unknown stage "zz"' in errors
    assert len(errors) == 3


def test_argument_defaults_and_run_parameters_are_checked():
    with_argument = stage(
        "b",
        pod={
            "inputs": {"arguments": [{"name": "v", "value": "${stages.c.outputs.k}"}]},
            "spec": {"containers": [{"image": "alpine"}]},
        },
    )
    errors = validate_output_references(workflow(DIAMOND), {"b": with_argument})
    assert len(errors) == 1 and 'stage "b"' in errors[0]
    run_params = [{"name": "c", "parameters": [{"name": "v", "value": "${stages.b.outputs.k}"}]}]
    errors = validate_output_references(workflow(DIAMOND), {}, run_params)
    assert errors == [
        'stage "c": ${stages.b.outputs.k} refers to stage "b", which is not upstream of "c"'
    ]


def test_workflow_as_plain_object_is_accepted():
    wf = workflow(DIAMOND).to_object()
    stages = {"b": echo_stage("b", "${stages.c.outputs.k}").to_object()}
    assert len(validate_output_references(wf, stages)) == 1
