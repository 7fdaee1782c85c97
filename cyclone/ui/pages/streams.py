"""The server-sent event streams the pages follow (a run, the runs list), signed in by the session
cookie.
"""

from __future__ import annotations

from cyclone.ui.deps import ui_router

router = ui_router()
