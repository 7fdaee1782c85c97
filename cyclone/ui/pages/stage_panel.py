"""A stage of a run: its live log, containers, inputs, outputs, events, pod YAML and artifacts; and
log search across a run.
"""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
