"""The addresses of the pages of projects, workflows, runs and stages, built in one place so
that every page and template quotes each path segment the same way (nothing is left
unquoted, not even `/`)."""

from __future__ import annotations

from urllib.parse import quote, urlencode


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def project_url(project: str) -> str:
    return f"/projects/{_segment(project)}"


def workflow_url(project: str, workflow: str) -> str:
    return f"{project_url(project)}/workflows/{_segment(workflow)}"


def run_url(project: str, workflow: str, run: str) -> str:
    return f"{workflow_url(project, workflow)}/runs/{_segment(run)}"


def stage_url(project: str, workflow: str, run: str, stage: str) -> str:
    return f"{run_url(project, workflow, run)}/stages/{_segment(stage)}"


def compare_url(project: str, workflow: str, a: str = "", b: str = "") -> str:
    """The comparison of runs `a` and `b` (either may be left to the page to choose)."""
    query = urlencode([(k, v) for k, v in (("a", a), ("b", b)) if v])
    return f"{workflow_url(project, workflow)}/compare" + (f"?{query}" if query else "")


def run_stream_url(project: str, workflow: str, run: str) -> str:
    return f"/ui/streams/runs/{_segment(project)}/{_segment(workflow)}/{_segment(run)}"


def log_stream_url(project: str, workflow: str, run: str, stage: str) -> str:
    return (f"/ui/streams/logs/{_segment(project)}/{_segment(workflow)}/{_segment(run)}/"
            f"{_segment(stage)}")


GLOBALS = {f.__name__: f for f in (project_url, workflow_url, run_url, stage_url, compare_url)}
"""The builders templates call by name."""
