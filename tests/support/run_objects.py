"""Hand-built pieces of WorkflowRun objects for the pure tests of the pages' analyses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
"""The moment every hand-built run starts from."""
DIAMOND = {"spec": {"stages": [
    {"name": "version"},
    {"name": "build-linux", "depends": ["version"]},
    {"name": "build-mac", "depends": ["version"]},
    {"name": "report", "depends": ["build-linux", "build-mac"]},
]}}
"""The stages of examples/diamond.yaml, as a workflow names them."""


def at(seconds: float) -> str:
    """RFC 3339 text `seconds` after T0."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
