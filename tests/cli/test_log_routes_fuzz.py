"""Schemathesis over the log and artifact routes of a live server: no input causes a 5xx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from cli.conftest import ADMIN_TOKEN
from cyclone.kube import kinds
from cyclone.server import create_app
from cyclone.server.artifacts import build_artifacts_router
from cyclone.server.logs import build_logs_router

MAX_EXAMPLES = 8


def _spec() -> dict:
    app = create_app(cluster=object(), data_dir=Path("."), admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
                     extra_routers=[build_logs_router(prefix=""),
                                    build_artifacts_router(prefix="")])
    return app.openapi()


schema = schemathesis.openapi.from_dict(_spec()).include(path_regex="/(logs|logstream|artifacts)")


@pytest.fixture(scope="module")
def base_url(live_server) -> str:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=live_server.url + "/apis/v1alpha1", headers=headers) as client:
        client.post("/projects", json={"metadata": {"name": "p"}})
        client.post("/projects/p/stages", json={"metadata": {"name": "s"}, "spec": {"pod": {
            "spec": {"containers": [{"image": "busybox"}]}}}})
        client.post("/projects/p/workflows", json={"metadata": {"name": "w"}, "spec": {
            "stages": [{"name": "s"}]}})
        client.post("/projects/p/workflows/w/workflowruns", json={"metadata": {"name": "r"}})
    live_server.call(live_server.cluster.patch(
        kinds.WORKFLOW_RUN, "r", {"status": {"overall": {"phase": "Failed"}}},
        "cyclone-system", subresource="status"))
    return live_server.url


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case, base_url) -> None:
    if case.headers:
        case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
    response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                         timeout=10)
    assert response.status_code < 500, f"{response.status_code} {response.text[:300]}\n" \
        f"{case.as_curl_command()}"
