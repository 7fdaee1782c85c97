"""``GET /metrics``: every Prometheus metric of this process, and the server's own ones.

The endpoint takes the admin token (Prometheus sends it as a bearer token): its labels
name every tenant's namespaces and projects and how busy they are, which no tenant may
read of another, and it shares its port with the tenants' API. It shows counts and
durations labelled by tenant namespace, project, phase, controller and HTTP verb/code,
never a run or object name, a parameter value or a log line.

`cyclone up` runs engine and server in one process: this endpoint shows both.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest

from cyclone.server.auth import require_admin

LOG_BYTES_STORED = Counter(
    "cyclone_log_bytes_stored_total",
    "Bytes of stage logs the server stored (after masking), by tenant and project.",
    ["tenant", "project"])

router = APIRouter()


@router.get("/metrics", tags=["health"], include_in_schema=False,
            dependencies=[Depends(require_admin)])
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
