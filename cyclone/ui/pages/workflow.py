"""Projects, the workflow page (DAG, run history, triggers, YAML, starting a run) and
applying YAML.
"""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
