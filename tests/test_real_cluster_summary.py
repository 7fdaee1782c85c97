"""Every pytest run ends with one line saying how many real-cluster cases ran or skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent

CASES = '''
import pytest
from support.control_plane import unavailable


@pytest.fixture
def plane():
    unavailable("no kube-apiserver in the cache")


@pytest.mark.k8s
def test_on_a_plane(plane):
    pass


@pytest.mark.k8s
def test_on_another_plane(plane):
    pass


@pytest.mark.k8s
def test_skips_for_another_reason():
    pytest.skip("the cluster is too old")


@pytest.mark.k8s
def test_runs_and_fails():
    assert False


@pytest.mark.k8s
def test_runs_anyway():
    pass


def test_embedded_only():
    pytest.skip("not a real-cluster case")


def test_needs_a_plane_but_is_not_marked(plane):
    pass
'''


@pytest.fixture
def cases(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     "markers =\n    k8s: needs a real kube-apiserver\n")
    pytester.makepyfile(test_cases=CASES)
    return pytester


def summary(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("real-cluster cases:")]


def test_summary_counts_ran_and_skipped_cases_grouped_by_reason(cases, monkeypatch):
    monkeypatch.delenv("CYCLONE_REQUIRE_K8S", raising=False)
    result = cases.runpytest("-p", "support.k8s_summary")
    result.assert_outcomes(passed=1, failed=1, skipped=5)
    assert summary(result) == [
        "real-cluster cases: 2 ran, 4 skipped (3: no kube-apiserver in the cache; "
        "1: the cluster is too old)"
    ]


def test_summary_says_every_case_ran_when_none_skipped(cases):
    result = cases.runpytest("-p", "support.k8s_summary", "-k", "runs")
    assert summary(result) == ["real-cluster cases: 2 ran, 0 skipped"]


def test_summary_counts_required_cluster_failures_apart(cases, monkeypatch):
    monkeypatch.setenv("CYCLONE_REQUIRE_K8S", "1")
    result = cases.runpytest("-p", "support.k8s_summary", "-k", "on_a_plane or another_plane")
    result.assert_outcomes(errors=2)
    assert summary(result) == ["real-cluster cases: 0 ran, 0 skipped, 2 failed before running"]


def test_summary_names_the_cases_an_early_stop_left_unrun(cases):
    result = cases.runpytest("-p", "support.k8s_summary", "-x", "-k", "fails or anyway")
    assert summary(result) == ["real-cluster cases: 1 ran, 0 skipped, 1 not reached"]



@pytest.fixture
def parallel_cases(cases: pytest.Pytester) -> pytest.Pytester:
    """The cases with the plugin loaded by a conftest: an xdist worker starts with the
    interpreter's import path, without the directory `support` lies in."""
    cases.makeconftest(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
                       "pytest_plugins = ['support.k8s_summary']\n")
    return cases


def test_summary_counts_the_cases_parallel_workers_ran(parallel_cases, monkeypatch):
    monkeypatch.delenv("CYCLONE_REQUIRE_K8S", raising=False)
    result = parallel_cases.runpytest("-n", "2")
    result.assert_outcomes(passed=1, failed=1, skipped=5)
    assert summary(result) == [
        "real-cluster cases: 2 ran, 4 skipped (3: no kube-apiserver in the cache; "
        "1: the cluster is too old)"
    ]


def test_summary_names_the_cases_a_worker_left_unrun(parallel_cases):
    result = parallel_cases.runpytest("-n", "1", "-x", "-k", "fails or anyway")
    assert summary(result) == ["real-cluster cases: 1 ran, 0 skipped, 1 not reached"]
