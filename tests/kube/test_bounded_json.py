"""Documents too deep for Python's recursive JSON decoder are still read, their depths cut."""

from __future__ import annotations

import json

import pytest

from cyclone.kube.bounded_json import loads


def nested(depth: int, leaf: str = "{}") -> str:
    return '{"a":' * depth + leaf + "}" * depth


@pytest.mark.parametrize("text", [
    '{"kind": "List", "items": [{"a": 1, "b": [true, false, null, -1.5e3, "x\\"y\\u00e9"]}],'
    ' "metadata": {}}',
    "[]", "{}", '"plain"', "12", '[[], [{}], {"k": []}]',
])
def test_ordinary_documents_read_as_json_loads_reads_them(text):
    assert loads(text) == json.loads(text)


def test_a_document_too_deep_for_the_recursive_decoder_is_read_with_its_depths_cut():
    text = ('{"items": [{"metadata": {"name": "deep"}, "spec": ' + nested(9000) + '}, '
            '{"metadata": {"name": "plain"}, "spec": {"x": [1, {"y": "z"}]}}]}')
    with pytest.raises(RecursionError):
        json.loads(text)
    document = loads(text, max_depth=50)
    deep, plain = document["items"]
    assert deep["metadata"] == {"name": "deep"}
    assert plain == {"metadata": {"name": "plain"}, "spec": {"x": [1, {"y": "z"}]}}
    depth, node = 0, deep["spec"]
    while isinstance(node, dict):
        node, depth = node["a"], depth + 1
    assert node is None and depth < 50


def test_the_iterative_reader_gives_the_same_answer_as_json_loads_below_the_cut():
    from cyclone.kube.bounded_json import _loads_iteratively

    text = json.dumps({"a": [1, 2.5, {"b": None, "c": [True, "s", {"d": []}]}], "e": "\\n"})
    assert _loads_iteratively(text, 100) == json.loads(text)
    with pytest.raises(ValueError):
        _loads_iteratively('{"a": 1', 100)
    with pytest.raises(ValueError):
        _loads_iteratively('{"a": 1} x', 100)
