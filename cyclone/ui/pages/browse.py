"""The global runs list: filters kept in the URL, server-side paging, live rows."""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
