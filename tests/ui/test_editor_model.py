"""The editor's model without a server: the state the form carries, the edits, the stage
form's fields, where validation errors belong, the YAML diff, and the page rendered for
empty, normal and large workflows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cyclone.ui import editing
from cyclone.ui.editing import EditError, EditorState, StageFields
from cyclone.ui.pages.editor import Problems, Workspace, _context
from cyclone.ui.templating import environment

WORKFLOW = {"metadata": {"name": "w", "resourceVersion": "41"},
            "spec": {"stages": [{"name": "a"}, {"name": "b", "depends": ["a"]}],
                     "globalVariables": [{"name": "v", "value": "1"}]}}
POD = {"pod": {"inputs": {"arguments": [{"name": "cmd", "value": "make",
                                         "description": "what to run"}]},
               "spec": {"containers": [{"name": "main", "image": "alpine:3.20",
                                        "command": ["sh", "-c", "{{ cmd }}"],
                                        "resources": {"limits": {"cpu": "1"}}}],
                        "volumes": [{"name": "cache"}]}},
       "retries": 2}


def test_the_state_survives_its_trip_through_the_form() -> None:
    state = EditorState.start(WORKFLOW)
    editing.add_stage(state, "lint", POD)
    again = EditorState.from_json(state.to_json())
    assert again == state
    assert again.resource_version == "41" and again.new == ["lint"] and again.selected == "lint"
    assert again.spec["globalVariables"] == [{"name": "v", "value": "1"}]
    state.spec["stages"][0]["name"] = "changed"
    assert WORKFLOW["spec"]["stages"][0]["name"] == "a", "the stored workflow is not touched"


@pytest.mark.parametrize("text", [
    "", "{", "[]", '{"spec": 3}', '{"spec": {}, "stages": []}',
    '{"spec": {"note": "' + "x" * editing.MAX_STATE_BYTES + '"}}'])
def test_a_damaged_state_is_an_edit_error(text: str) -> None:
    with pytest.raises(EditError):
        EditorState.from_json(text)


def test_connect_disconnect_and_their_refusals() -> None:
    state = EditorState.start(WORKFLOW)
    editing.add_stage(state, "c", None)
    editing.connect(state, "b", "c")
    editing.connect(state, "a", "c")
    assert state.item("c") == {"name": "c", "depends": ["b", "a"]}
    with pytest.raises(EditError, match="already depends"):
        editing.connect(state, "a", "c")
    with pytest.raises(EditError, match="itself"):
        editing.connect(state, "c", "c")
    with pytest.raises(EditError, match="'zz' is not in this workflow"):
        editing.connect(state, "zz", "c")
    editing.connect(state, "c", "a")
    assert state.item("a")["depends"] == ["c"], "a cycle is left to validation"
    editing.disconnect(state, "b", "c")
    editing.disconnect(state, "a", "c")
    assert state.item("c") == {"name": "c"}
    with pytest.raises(EditError, match="does not depend"):
        editing.disconnect(state, "a", "c")
    with pytest.raises(EditError, match="already in this workflow"):
        editing.add_stage(state, "a", None)


def test_removing_a_stage_unhooks_it_and_forgets_it_only_if_new() -> None:
    state = EditorState.start(WORKFLOW)
    editing.add_stage(state, "new-one", POD)
    editing.connect(state, "new-one", "b")
    editing.remove_stage(state, "new-one")
    assert state.names() == ["a", "b"] and state.item("b")["depends"] == ["a"]
    assert state.stages == {} and state.new == [] and state.selected == ""
    state.stages["a"] = POD
    editing.remove_stage(state, "a")
    assert state.names() == ["b"] and state.item("b") == {"name": "b"}
    assert "a" in state.stages, "an edited stored stage is not forgotten, only unused"


def test_new_names_are_checked_and_free_ones_found() -> None:
    assert editing.check_new_name(" lint ", ["a"]) == "lint"
    for bad in ("", "Lint", "-x", "x_y", "a" * 64):
        with pytest.raises(EditError):
            editing.check_new_name(bad, [])
    with pytest.raises(EditError, match="already exists"):
        editing.check_new_name("a", ["a"])
    assert editing.free_name("shell", ["shell", "shell-2"]) == "shell-3"
    assert editing.free_name("go", ["shell"]) == "go"


def test_stage_fields_read_and_write_the_first_container_keeping_the_rest() -> None:
    fields = editing.stage_fields(POD)
    assert fields == StageFields(image="alpine:3.20", command="sh\n-c\n{{ cmd }}", args="",
                                 env="", arguments="cmd=make", outputs="")
    edited = editing.apply_fields(POD, StageFields(
        image=" busybox ", command="make\r\n\nall", args="-j\n4", env="A=1\nB=x=y",
        arguments="cmd=make test\nextra=", outputs="bin=/out/bin"))
    container = edited["pod"]["spec"]["containers"][0]
    assert container == {"name": "main", "image": "busybox", "command": ["make", "all"],
                         "args": ["-j", "4"], "resources": {"limits": {"cpu": "1"}},
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "x=y"}]}
    assert edited["pod"]["inputs"]["arguments"] == [
        {"name": "cmd", "value": "make test", "description": "what to run"}, {"name": "extra"}]
    assert edited["pod"]["outputs"] == {"artifacts": [{"name": "bin", "path": "/out/bin"}]}
    assert edited["pod"]["spec"]["volumes"] == [{"name": "cache"}] and edited["retries"] == 2
    assert POD["pod"]["spec"]["containers"][0]["image"] == "alpine:3.20"
    cleared = editing.apply_fields(edited, StageFields(image="busybox"))
    assert "command" not in cleared["pod"]["spec"]["containers"][0]
    assert "inputs" not in cleared["pod"] and "outputs" not in cleared["pod"]
    assert editing.apply_fields({}, StageFields(image="x"))["pod"]["spec"]["containers"] == [
        {"image": "x"}]


def test_a_line_without_equals_names_its_field() -> None:
    with pytest.raises(EditError) as raised:
        editing.apply_fields(POD, StageFields(image="x", outputs="just-a-name"))
    assert raised.value.field == "outputs"
    assert str(raised.value) == "outputs, line 1: write NAME=VALUE, got 'just-a-name'"


def test_validation_paths_map_to_form_fields_and_stages() -> None:
    assert editing.field_of("spec.pod.spec.containers[0].image") == "image"
    assert editing.field_of("spec.pod.spec.containers[0].env[2].name") == "env"
    assert editing.field_of("spec.pod.inputs.arguments[1].name") == "arguments"
    assert editing.field_of("spec.pod.outputs.artifacts") == "outputs"
    assert editing.field_of("spec.pod.spec.containers[1].image") == ""
    assert editing.field_of("spec.retryBackoff") == ""
    assert editing.stage_of("spec.stages[1].depends", ["a", "b"]) == "b"
    assert editing.stage_of("spec.stages[7].depends", ["a", "b"]) == ""
    assert editing.stage_of("spec.globalVariables[0]", ["a"]) == ""


def test_the_diff_marks_added_and_removed_lines_and_nothing_when_equal() -> None:
    before = editing.manifest("Workflow", "w", WORKFLOW["spec"])
    state = EditorState.start(WORKFLOW)
    editing.connect(state, "b", "a")
    assert editing.unified_diff("same", before, before) is None
    diff = editing.unified_diff("Workflow w", before, editing.manifest("Workflow", "w",
                                                                        state.spec))
    kinds = [line.kind for line in diff.lines]
    assert kinds[:3] == ["file", "file", "hunk"]
    assert [line.text for line in diff.lines if line.kind == "add"] == [
        "+    depends:", "+    - b"]
    new = editing.unified_diff("Stage s (new)", None, editing.manifest("Stage", "s", POD))
    assert new.lines[0].text == "--- /dev/null"
    assert all(line.kind in ("file", "hunk", "add") for line in new.lines)


def page(workflow: dict, stored: dict, state: EditorState, problems: Problems | None = None
         ) -> str:
    ws = Workspace(project=None, workflow=workflow, stored=stored, taken=set(stored))
    context = _context(ws, state, problems or Problems(), {"shell": {"metadata": {
        "name": "shell", "annotations": {"cyclone.dev/alias": "Shell"}}}}, "p",
        workflow["metadata"]["name"])
    request = SimpleNamespace(url=SimpleNamespace(path="/projects/p/workflows/w/edit"))
    return environment().get_template("editor.html").render(
        {"request": request, "session": None, "csrf": "token", **context})


def stage(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"project.cyclone.dev/name": "p"}},
            "spec": POD}


def test_the_page_renders_for_an_empty_workflow() -> None:
    workflow = {"metadata": {"name": "w"}, "spec": {}}
    text = page(workflow, {}, EditorState.start(workflow))
    assert "data-empty" in text and "data-no-changes" in text and "<svg" not in text
    assert '<option value="shell">Shell (shell)</option>' in text


def test_the_page_renders_a_selected_stage_with_its_problems() -> None:
    state = EditorState.start(WORKFLOW)
    state.selected = "b"
    problems = Problems()
    problems.add("b", "spec.pod.spec.containers[0].image: bad", "image")
    problems.add("", "the workflow as a whole is wrong")
    text = page(WORKFLOW, {"a": stage("a"), "b": stage("b")}, state, problems)
    assert 'name="fields_for" value="b"' in text and 'value="alpine:3.20"' in text
    assert '<div class="field-error" data-field-problem="image">' in text
    assert "the workflow as a whole is wrong" in text
    assert "data-editor-save disabled" in text


def test_the_page_renders_for_three_hundred_stages() -> None:
    names = [f"s{i:03d}" for i in range(300)]
    workflow = {"metadata": {"name": "w"}, "spec": {"stages": [
        {"name": n, **({"depends": [names[i - 1]]} if i else {})} for i, n in enumerate(names)]}}
    text = page(workflow, {n: stage(n) for n in names}, EditorState.start(workflow))
    assert text.count('<tr data-editor-stage="') == 300
    assert text.count("data-dag-handle") == 300


def test_a_stage_added_here_can_be_renamed_everywhere_it_is_named() -> None:
    state = EditorState.start(WORKFLOW)
    editing.add_stage(state, "lint", POD)
    editing.connect(state, "lint", "b")
    editing.rename_stage(state, "lint", "check")
    assert state.names() == ["a", "b", "check"]
    assert state.item("b")["depends"] == ["a", "check"]
    assert list(state.stages) == ["check"] and state.new == ["check"]
    assert state.selected == "check"
    with pytest.raises(EditError, match="only a stage added here") as raised:
        editing.rename_stage(state, "a", "z")
    assert raised.value.field == "name"
    with pytest.raises(EditError, match="already in this workflow"):
        editing.rename_stage(state, "check", "b")


def test_trivial_is_set_and_cleared_keeping_an_explicit_false() -> None:
    state = EditorState.start({"spec": {"stages": [{"name": "a", "trivial": False},
                                                   {"name": "b"}]}})
    editing.set_trivial(state, "a", False)
    assert state.item("a") == {"name": "a", "trivial": False}
    editing.set_trivial(state, "b", True)
    assert state.item("b") == {"name": "b", "trivial": True}
    editing.set_trivial(state, "b", False)
    assert state.item("b") == {"name": "b"}
