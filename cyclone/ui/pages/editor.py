"""The workflow editor: stages from templates, drag-to-connect, stage forms, validation and a YAML
diff before saving.
"""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
