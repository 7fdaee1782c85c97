import pytest

from cyclone.kube.errors import Invalid
from cyclone.kube.patching import apply_patch, json_patch, merge_patch


def test_merge_patch_rfc7386_examples() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3]}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3]}
    assert target["c"] == {"d": "e", "f": "g"}


def test_json_patch_on_lists_and_escaped_pointers() -> None:
    doc = {"items": [1, 2], "a/b": {"~x": 1}}
    result = json_patch(doc, [
        {"op": "add", "path": "/items/1", "value": 9},
        {"op": "add", "path": "/items/-", "value": 3},
        {"op": "remove", "path": "/items/0"},
        {"op": "replace", "path": "/a~1b/~0x", "value": 2},
    ])
    assert result == {"items": [9, 2, 3], "a/b": {"~x": 2}}
    assert doc == {"items": [1, 2], "a/b": {"~x": 1}}


@pytest.mark.parametrize(
    "ops",
    [[{"op": "remove", "path": "/missing"}], [{"op": "replace", "path": "/x/y", "value": 1}],
     [{"op": "test", "path": "/a", "value": 2}], [{"op": "bogus", "path": "/a"}],
     [{"op": "add", "path": "/l/5", "value": 1}], [{"op": "move", "path": "/b"}]],
)
def test_bad_json_patches_are_invalid(ops: list) -> None:
    with pytest.raises(Invalid):
        json_patch({"a": 1, "l": []}, ops)


def test_apply_patch_types() -> None:
    assert apply_patch({"a": 1}, {"b": 2}, "strategic") == {"a": 1, "b": 2}
    with pytest.raises(Invalid):
        apply_patch({"a": 1}, [], "merge")
    with pytest.raises(Invalid):
        apply_patch({"a": 1}, {}, "apply")


@pytest.mark.parametrize(("old", "new"), [
    ({}, {}),
    ({"a": 1}, {"a": 1}),
    ({"a": 1}, {"a": 2}),
    ({"a": 1, "b": 2}, {"b": 2}),
    ({"a": {"x": 1, "y": [1, 2]}}, {"a": {"x": 1, "y": [2]}, "c": "new"}),
    ({"a": {"x": {"deep": 1}}}, {"a": {"x": {"deep": 1, "more": True}}}),
    ({"a": [1, {"b": 2}]}, {"a": {"now": "an object"}}),
    ({"a": {"x": 1}}, {"a": "now a string"}),
])
def test_merge_patch_between_turns_the_old_object_into_the_new_one(old, new):
    from cyclone.kube.patching import merge_patch_between

    assert merge_patch(old, merge_patch_between(old, new)) == new


def test_merge_patch_between_holds_only_what_changed():
    from cyclone.kube.patching import merge_patch_between

    shared = {"phase": "Succeeded", "outputs": [{"key": "k", "value": "v"}]}
    old = {"stages": {f"s{i}": shared for i in range(1000)}, "overall": {"phase": "Running"}}
    new = {**old, "stages": {**old["stages"], "s7": {"phase": "Failed"}}}
    assert merge_patch_between(old, new) == {
        "stages": {"s7": {"phase": "Failed", "outputs": None}}}
