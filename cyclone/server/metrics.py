"""``GET /metrics``: every Prometheus metric of this process, and the server's own ones.

The endpoint needs no token, like ``/healthcheck``: Prometheus scrapes it without one. It
shows counts and durations labelled by tenant namespace, project, phase, controller and
HTTP verb/code, never a run or object name, a parameter value or a log line, so it tells a
reader how busy each project is and nothing stored in it. Where even project names must
stay private, keep the port away from tenants (a NetworkPolicy, or the Service unexposed).

`cyclone up` runs engine and server in one process: this endpoint shows both.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest

LOG_BYTES_STORED = Counter(
    "cyclone_log_bytes_stored_total",
    "Bytes of stage logs the server stored (after masking), by tenant and project.",
    ["tenant", "project"])

router = APIRouter()


@router.get("/metrics", tags=["health"], include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
