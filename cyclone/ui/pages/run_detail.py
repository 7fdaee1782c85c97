"""The run detail page: header, actions, the live DAG, the timeline and the stage table."""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
