"""Clusters (`/clusters`): the ExecutionClusters with their state and the tenants that
opened them (the admin sees every one, a tenant only those it opened), where the tenant's
runs execute, and its Cluster integrations to open or close."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from cyclone.engine.core.tenancy import choose_execution_context, opened_by, opened_record
from cyclone.kube import kinds
from cyclone.server import integrations
from cyclone.server.listing import ListQuery
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.pages.admin_integrations import summary
from cyclone.ui.templating import render

router = ui_router()


def execution_cluster_rows(items: list[dict], tenant: str, admin: bool) -> list[dict]:
    """What the page shows of each ExecutionCluster: never its credential, only the
    server it names; a tenant sees only the ones it opened, and only its own openings."""
    mine = {o.cluster for o in opened_by(tenant, items)}
    rows = []
    for ec in sorted(items, key=lambda e: e["metadata"]["name"]):
        name = ec["metadata"]["name"]
        if not admin and name not in mine:
            continue
        record = opened_record(ec)
        status = ec.get("status") or {}
        openings = [(t, e["integration"], e["namespace"]) for t, entries in sorted(record.items())
                    for e in entries if admin or t == tenant]
        rows.append({"name": name, "phase": status.get("phase") or "Unknown",
                     "message": status.get("message") or "",
                     "since": status.get("lastTransitionTime"),
                     "server": str(((ec.get("spec") or {}).get("credential") or {})
                                   .get("server") or ""),
                     "openings": openings})
    return rows


@router.get("/clusters", response_class=HTMLResponse)
async def clusters_page(request: Request, session: UiSession = Depends(ui_session)
                        ) -> HTMLResponse:
    ecs = (await session.state.cluster.list(kinds.EXECUTION_CLUSTER)).items
    listed = await integrations.list_integrations(
        ListQuery(filter=""), tenant=session.tenant, state=session.state)
    own = sorted((summary(i) for i in listed["items"]
                  if (i.get("spec") or {}).get("type") == "Cluster"),
                 key=lambda r: r["name"])
    return render(request, "admin/clusters.html", {
        "clusters": execution_cluster_rows(ecs, session.tenant, session.admin),
        "integrations": own,
        "runs_in": choose_execution_context(session.tenant, ecs)})
