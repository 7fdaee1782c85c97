import re

import pytest

from cyclone.engine.core.names import gc_pod_name, stage_pod_name

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_stage_pod_name_is_deterministic_and_shaped():
    name = stage_pod_name("wf", "build", "wf-run-1", 1)
    assert name == stage_pod_name("wf", "build", "wf-run-1", 1)
    assert re.fullmatch(r"wf-build-[0-9a-f]{10}", name)


@pytest.mark.parametrize(
    "other",
    [("wf", "build", "wf-run-2", 1), ("wf", "build", "wf-run-1", 2), ("wf", "test", "wf-run-1", 1)],
)
def test_stage_pod_name_differs_per_run_stage_and_attempt(other):
    assert stage_pod_name("wf", "build", "wf-run-1", 1) != stage_pod_name(*other)


@pytest.mark.parametrize(
    ("workflow", "stage"),
    [
        ("w" * 63, "s" * 63),
        ("w" * 80, "b"),
        ("a", "s" * 80),
        ("Upper_Case.Workflow", "stage.one"),
        ("wf-", "-st"),
    ],
)
def test_stage_pod_name_is_a_dns_label_within_63_chars(workflow, stage):
    name = stage_pod_name(workflow, stage, "run", 3)
    assert len(name) <= 63
    assert DNS_LABEL.match(name), name


def test_truncated_names_stay_distinct():
    a = stage_pod_name("w" * 80 + "a", "build", "run", 1)
    b = stage_pod_name("w" * 80 + "b", "build", "run", 1)
    assert a != b


def test_gc_pod_name():
    assert gc_pod_name("wf-run-1") == "wfrgc--wf-run-1"
    long_name = gc_pod_name("r" * 70)
    assert len(long_name) <= 63
    assert long_name.startswith("wfrgc--r")
    assert DNS_LABEL.match(long_name)
    assert gc_pod_name("r" * 70) != gc_pod_name("r" * 71)


def test_a_run_created_again_under_the_same_name_gets_other_pod_names():
    first = stage_pod_name("wf", "build", "wf-run-1", 1, run_uid="uid-1")
    again = stage_pod_name("wf", "build", "wf-run-1", 1, run_uid="uid-2")
    assert first != again
    assert first == stage_pod_name("wf", "build", "wf-run-1", 1, run_uid="uid-1")
