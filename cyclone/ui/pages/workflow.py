"""The workflow page: its DAG, run history, triggers, YAML, and starting a run."""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
