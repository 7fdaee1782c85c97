"""Templates, resource types, integrations, clusters, and (admin) tenants and tokens."""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
