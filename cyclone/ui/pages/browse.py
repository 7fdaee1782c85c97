"""Projects, a project's workflows, and the global runs list with its filters and paging."""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
