"""Schemathesis over /openapi.json against a live server: no input may cause a 5xx.

Every route is covered, the log, artifact, webhook and delegation routes included.
`CYCLONE_FUZZ_EXAMPLES` raises the examples per operation (e.g. 50) for a deeper run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from cyclone.server import create_app
from cyclone.server.logs.services import log_and_artifact_routers

from .helpers import ADMIN_TOKEN
from .live import live_server

MAX_EXAMPLES = int(os.environ.get("CYCLONE_FUZZ_EXAMPLES", "5"))


def _spec() -> dict:
    app = create_app(cluster=object(), data_dir=Path("."), admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
                     extra_routers=log_and_artifact_routers())
    return app.openapi()


schema = schemathesis.openapi.from_dict(_spec())


def _seed(base_url: str) -> None:
    """Objects the generated requests may hit: tenant, project, stage, workflow, run."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=base_url + "/apis/v1alpha1", headers=headers) as client:
        client.post("/projects", json={"metadata": {"name": "p"}})
        client.post("/projects/p/stages", json={"metadata": {"name": "s"}, "spec": {"pod": {
            "spec": {"containers": [{"image": "busybox"}]}}}})
        client.post("/projects/p/workflows", json={"metadata": {"name": "w"}, "spec": {
            "stages": [{"name": "s"}]}})
        client.post("/projects/p/workflows/w/workflowruns", json={"metadata": {"name": "r"}})
        client.post("/integrations", json={"metadata": {"name": "c"}, "spec": {
            "type": "Cluster", "cluster": {"isControlCluster": True}}})


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("fuzz"), ADMIN_TOKEN,
                     log_and_artifact_routers()) as url:
        _seed(url)
        yield url


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case, base_url):
    if case.headers:
        case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = case.call(base_url=base_url, headers=headers, timeout=10)
    assert response.status_code < 500, f"{response.status_code} {response.text[:300]}\n" \
        f"{case.as_curl_command()}"
