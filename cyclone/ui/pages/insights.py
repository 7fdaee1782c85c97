"""Failure triage of a run, and the comparison of two runs."""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
