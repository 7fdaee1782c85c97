import base64
import json
import random
from datetime import UTC, datetime

import pytest

from cyclone.api.references import output_references
from cyclone.engine.core.render import (
    RenderContext,
    RenderError,
    global_variables,
    render_string,
    render_value,
    resolve_generators,
    secret_lookup_from,
    secret_references,
    stage_arguments,
)

DOCKER_AUTHS = '{"r.io": {"auth": "xyz"}}'
NOW = datetime(2026, 5, 1, 12, 30, 45, tzinfo=UTC)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRETS = {
    ("cyclone-devops", "docker"): {
        "data": {
            "user": b64("alice"),
            "config": b64(json.dumps({"auths": {"hub": {"token": "t0k"}}, "n": 3})),
            "broken": "***not base64***",
            ".dockerconfigjson": b64('{"auths": {"r.io": {"auth": "xyz"}}}'),
        },
        "stringData": {"plain": "visible"},
        "metadata": {"name": "docker"},
    }
}


def ctx(**overrides) -> RenderContext:
    values = {
        "stage": "build",
        "now": NOW,
        "rng": random.Random(1),
        "arguments": {"image": "golang:1.22", "cmd": "make test"},
        "variables": {"REGISTRY": "registry.local", "STAMP": "$(timenow:20060102)"},
        "outputs": {"compile": {"version": "1.2.3"}},
        "secret_lookup": secret_lookup_from(SECRETS),
    }
    values.update(overrides)
    return RenderContext(**values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ image }}", "golang:1.22"),
        ("{{image}}", "golang:1.22"),
        ("{{{ cmd }}}", "make test"),
        ("run: {{ cmd }} on {{ image }}", "run: make test on golang:1.22"),
        ("{{ unknown }}", "{{ unknown }}"),
        ("docker inspect --format '{{.Id}}'", "docker inspect --format '{{.Id}}'"),
        ("${variables.REGISTRY}", "registry.local"),
        ("${variables.REGISTRY}/app:v1", "registry.local/app:v1"),
        ("${variables.STAMP}", "20260501"),
        ("${stages.compile.outputs.version}", "1.2.3"),
        ("${secrets.cyclone-devops:docker/data.user}", "alice"),
        ("${secrets.cyclone-devops:docker/$.data.user}", "alice"),
        ("${secrets.cyclone-devops:docker/data.config/auths.hub.token}", "t0k"),
        ("${secrets.cyclone-devops:docker/data.config/n}", "3"),
        ("${secrets.cyclone-devops:docker/data.plain}", "visible"),
        ("${secrets.cyclone-devops:docker/data..dockerconfigjson/auths}", DOCKER_AUTHS),
        ("${secrets.cyclone-devops:docker/data['.dockerconfigjson']/auths}", DOCKER_AUTHS),
        ("${secrets.cyclone-devops:docker/metadata.name}", "docker"),
        ("$(timenow:2006-01-02T15:04:05Z07:00)", "2026-05-01T12:30:45Z"),
        ("$(timenow:RFC3339)", "2026-05-01T12:30:45Z"),
        ("$(timenow:%Y/%m/%d)", "2026/05/01"),
        ("$(timenow:)", "2026-05-01T12:30:45Z"),
        ("echo $(HOME) ${HOME}", "echo $(HOME) ${HOME}"),
        ("${other.thing}", "${other.thing}"),
    ],
)
def test_render_string(text, expected):
    assert render_string(text, ctx()) == expected


def test_substituted_values_are_not_rendered_again():
    context = ctx(arguments={"a": "{{ b }}", "b": "no", "c": "${variables.REGISTRY}"})
    assert render_string("{{ a }} {{ c }}", context) == "{{ b }} ${variables.REGISTRY}"


def test_random_draws_from_the_given_rng():
    first = render_string("$(random:12)", ctx(rng=random.Random(42)))
    again = render_string("$(random:12)", ctx(rng=random.Random(42)))
    other = render_string("$(random:12)", ctx(rng=random.Random(43)))
    assert first == again != other
    assert len(first) == 12 and first.isalnum()
    assert render_string("$(random:0)", ctx()) == ""


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${variables.MISSING}", 'unknown variable "MISSING"'),
        ("${stages.test.outputs.x}", 'no outputs of stage "test"'),
        ("${stages.compile.outputs.nope}", 'stage "compile" has no output "nope"'),
        ("${stages.compile.outputs}", "malformed reference"),
        ("${secrets.cyclone-devops:absent/data.x}", 'secret "cyclone-devops/absent" not found'),
        ("${secrets.cyclone-devops:docker/data.nokey}", "cannot resolve"),
        ("${secrets.cyclone-devops:docker/data.broken}", "cannot resolve"),
        ("${secrets.cyclone-devops:docker}", "malformed secret reference"),
        ("$(random:x)", "needs a length"),
    ],
)
def test_unresolvable_references_are_errors_naming_the_stage(text, fragment):
    with pytest.raises(RenderError) as caught:
        render_string(text, ctx())
    assert fragment in str(caught.value)
    assert str(caught.value).startswith('stage "build"')


def test_secrets_without_lookup_are_errors():
    with pytest.raises(RenderError, match="no secret lookup"):
        render_string("${secrets.ns:s/data.k}", ctx(secret_lookup=None))


def test_render_value_walks_the_whole_pod_spec_and_keeps_keys():
    spec = {
        "containers": [
            {
                "image": "{{ image }}",
                "command": ["sh", "-c", "{{{ cmd }}}"],
                "env": [{"name": "{{ image }}", "value": "${variables.REGISTRY}"}],
                "ports": [{"containerPort": 8080}],
            }
        ],
        "{{ image }}": True,
    }
    rendered = render_value(spec, ctx())
    container = rendered["containers"][0]
    assert container["image"] == "golang:1.22"
    assert container["command"] == ["sh", "-c", "make test"]
    assert container["env"] == [{"name": "golang:1.22", "value": "registry.local"}]
    assert container["ports"] == [{"containerPort": 8080}]
    assert "{{ image }}" in rendered
    assert spec["containers"][0]["image"] == "{{ image }}"


def test_arguments_defaults_are_overridden_by_run_parameters():
    declared = [{"name": "image", "value": "alpine"}, {"name": "cmd", "value": "true"}]
    overrides = [{"name": "cmd", "value": "make"}, {"name": "extra", "value": "x"}]
    assert stage_arguments("s", declared, overrides) == {
        "image": "alpine",
        "cmd": "make",
        "extra": "x",
    }


@pytest.mark.parametrize(
    "overrides", [[], [{"name": "cmd", "value": ""}], [{"name": "cmd", "value": None}]]
)
def test_required_argument_without_value_is_an_error(overrides):
    declared = [{"name": "cmd", "required": True}]
    with pytest.raises(RenderError) as caught:
        stage_arguments("build", declared, overrides)
    assert str(caught.value) == 'stage "build": required argument "cmd" has no value'


def test_optional_argument_without_value_renders_empty():
    assert stage_arguments("s", [{"name": "flags"}], []) == {"flags": ""}


def test_argument_values_are_rendered_with_variables_and_outputs():
    declared = [
        {"name": "tag", "value": "${stages.compile.outputs.version}"},
        {"name": "repo", "value": "${variables.REGISTRY}/app"},
    ]
    assert stage_arguments("s", declared, [], ctx()) == {
        "tag": "1.2.3",
        "repo": "registry.local/app",
    }


def test_global_variables_take_workflow_defaults_and_run_values():
    workflow = [{"name": "A", "value": "wf"}, {"name": "B", "value": "wf"}]
    run = [{"name": "B", "value": "run"}, {"name": "C", "value": None}]
    assert global_variables(workflow, run) == {"A": "wf", "B": "run", "C": ""}


def test_resolve_generators_fixes_values_once():
    values = {"ID": "$(random:6)", "DAY": "$(timenow:DateOnly)", "KEEP": "${variables.X}"}
    fixed = resolve_generators(values, NOW, random.Random(3))
    assert len(fixed["ID"]) == 6
    assert fixed["DAY"] == "2026-05-01"
    assert fixed["KEEP"] == "${variables.X}"


def test_secret_and_output_references_are_listed():
    assert secret_references(["${secrets.ns:s/data.k}", "x ${secrets.n2:t/data.a/b} y"]) == {
        ("ns", "s"),
        ("n2", "t"),
    }
    value = {"a": ["${stages.x.outputs.k1}", {"b": "pre ${stages.y.outputs.k2}"}]}
    assert output_references(value) == [("x", "k1"), ("y", "k2")]
