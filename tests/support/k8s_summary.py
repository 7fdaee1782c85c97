"""One terminal-summary line on the real-cluster cases (the items marked `k8s`).

Without a control plane those cases skip, and pytest says why only under `-rs`. This line
says at the end of every run how many of them ran and why the others did not, e.g.
``real-cluster cases: 0 ran, 187 skipped (187: Kubernetes control-plane binaries missing
(kube-apiserver); run `bash scripts/control-plane/build.sh`)``.

Under pytest-xdist the tests are collected and run in the workers: each report says there
whether its case is a real-cluster one (`real_cluster`), and each worker hands the cases it
selected to the controller, which prints the line.
"""

from __future__ import annotations

import sys
from collections import Counter

import pytest

MARKER = "k8s"
WORKER_OUTPUT_KEY = "real_cluster_selected"


class RealClusterSummary:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.selected: set[str] = set()
        self.outcomes: dict[str, str] = {}
        self.reasons: dict[str, str] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.selected = {
            item.nodeid for item in session.items if item.get_closest_marker(MARKER)
        }
        worker_output = getattr(self.config, "workeroutput", None)
        if worker_output is not None:
            worker_output[WORKER_OUTPUT_KEY] = sorted(self.selected)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        """An xdist worker ended: the real-cluster cases it collected count as selected."""
        self.selected.update(getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY, ()))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        report.real_cluster = item.get_closest_marker(MARKER) is not None or (
            report.skipped and _skip_reason(report) in _plane_reasons())
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not getattr(report, "real_cluster", False):
            return
        self.selected.add(report.nodeid)
        if report.skipped and not hasattr(report, "wasxfail"):
            self.outcomes[report.nodeid] = "skipped"
            self.reasons[report.nodeid] = _skip_reason(report)
        elif report.when == "call":
            self.outcomes[report.nodeid] = "ran"
        elif report.failed and report.nodeid not in self.outcomes:
            self.outcomes[report.nodeid] = "errored"

    def line(self) -> str:
        counts = Counter(self.outcomes.values())
        text = f"real-cluster cases: {counts['ran']} ran, {counts['skipped']} skipped"
        reasons = Counter(self.reasons.values())
        if reasons:
            text += " (" + "; ".join(f"{n}: {why}" for why, n in reasons.most_common()) + ")"
        if counts["errored"]:
            text += f", {counts['errored']} failed before running"
        unreached = len(self.selected) - len(self.outcomes)
        if unreached:
            text += f", {unreached} not reached"
        return text

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_line(self.line())


def _plane_reasons() -> set[str]:
    """The reasons tests gave for skipping for want of a control plane."""
    module = sys.modules.get("support.control_plane")
    return getattr(module, "UNAVAILABLE_REASONS", set())


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(RealClusterSummary(config), "real-cluster-summary")
