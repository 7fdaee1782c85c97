"""The overview page (run trends, success rate, running now, recent failures, storage), the stats
page, the tenant switcher and the Ctrl-K palette.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from cyclone.kube import kinds
from cyclone.server.tenant_records import tenant_from_namespace
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.templating import render

router = ui_router()


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, session: UiSession = Depends(ui_session)) -> HTMLResponse:
    return render(request, "overview.html", {})


async def tenant_names(session: UiSession) -> list[str]:
    """The tenants the session may act on: every tenant for the admin, else its own."""
    if not session.admin:
        return [session.tenant]
    listed = await session.state.cluster.list(kinds.NAMESPACE)
    names = {t["metadata"]["name"] for ns in listed.items
             if not ns["metadata"].get("deletionTimestamp")
             for t in [tenant_from_namespace(ns)] if t}
    return sorted(names | {session.tenant})


@router.get("/ui/tenant-switcher", response_class=HTMLResponse)
async def tenant_switcher(request: Request, session: UiSession = Depends(ui_session)
                          ) -> HTMLResponse:
    """The admin's tenant picker in the top bar."""
    return render(request, "components/tenant_switcher.html",
                  {"tenants": await tenant_names(session),
                   "next": request.headers.get("HX-Current-URL", "/")})
