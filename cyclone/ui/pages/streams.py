"""The server-sent event streams the pages follow, signed in by the session cookie.

`/ui/streams/runs/{project}/{workflow}/{run}` sends the events of the API's run stream
(`cyclone.server.run_stream`) in the session's tenant; it ends when the session's token is
revoked.
"""

from __future__ import annotations

from fastapi import Depends, Header, Request
from fastapi.responses import StreamingResponse

from cyclone.server.run_stream import HEARTBEAT_QUERY, scope_stream, token_checker
from cyclone.ui.deps import UiSession, ui_router, ui_session

router = ui_router()


@router.get("/ui/streams/runs/{project}/{workflow}/{run}")
async def run_events(request: Request, project: str, workflow: str, run: str,
                     session: UiSession = Depends(ui_session),
                     heartbeat: float = HEARTBEAT_QUERY,
                     last_event_id: str | None = Header(default=None)) -> StreamingResponse:
    scope = await session.workflow_scope(project, workflow)
    return await scope_stream(scope, run, last_event_id=last_event_id, heartbeat=heartbeat,
                              still_allowed=token_checker(request, session.token,
                                                          session.tenant))
