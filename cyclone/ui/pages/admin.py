"""Templates, resource types, integrations, clusters, and (admin) tenants and tokens."""

from __future__ import annotations

from cyclone.ui.deps import ui_router
from cyclone.ui.pages import admin_clusters, admin_integrations, admin_templates, admin_tenants

router = ui_router()
for _area in (admin_templates, admin_integrations, admin_clusters, admin_tenants):
    router.include_router(_area.router)
