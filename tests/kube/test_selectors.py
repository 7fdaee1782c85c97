import pytest

from cyclone.kube.errors import BadRequest
from cyclone.kube.selectors import matches, parse_field_selector, parse_label_selector

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [("app=web", True), ("app==web", True), ("app!=web", False), ("app!=db", True),
     ("missing!=x", True), ("app in (web,db)", True), ("app in (db)", False),
     ("app notin (db)", True), ("missing notin (db)", True), ("app notin (web)", False),
     ("tier", True), ("!tier", False), ("!missing", True), ("missing", False),
     ("app=web,tier=front,env in (prod, staging)", True), ("app=web,tier=back", False),
     ("", True), ("example.com/key", False)],
)
def test_label_selector_matching(selector: str, expected: bool) -> None:
    assert matches(LABELS, selector) is expected
    assert parse_label_selector(selector).matches(LABELS) is expected


def test_empty_labels_and_none() -> None:
    assert matches(None, "!a")
    assert not matches(None, "a")
    assert matches({}, None)


@pytest.mark.parametrize("bad", ["a=b=c", "in (x)", "a in x", "=b"])
def test_malformed_label_selector_is_bad_request(bad: str) -> None:
    with pytest.raises(BadRequest):
        parse_label_selector(bad)


def test_field_selector_matching_and_unsupported_fields() -> None:
    pod = {"metadata": {"name": "p", "namespace": "n"}, "spec": {"nodeName": "w1"},
           "status": {"phase": "Running"}}
    assert parse_field_selector("metadata.name=p,spec.nodeName==w1", "Pod").matches(pod)
    assert not parse_field_selector("status.phase!=Running", "Pod").matches(pod)
    assert parse_field_selector("spec.nodeName=", "Pod").matches({"metadata": {}}) is True
    with pytest.raises(BadRequest):
        parse_field_selector("spec.nodeName=w1", "ConfigMap")
    with pytest.raises(BadRequest):
        parse_field_selector("metadata.labels=x", "Pod")
