"""The OpenAPI document names the log routes' line options and the stop route's force."""

from __future__ import annotations

from fastapi import FastAPI

from cyclone.server.runs import router as runs_router
from logs.serving import build_app

RUN = "/apis/v1alpha1/projects/{project}/workflows/{workflow}/workflowruns/{run}"


def parameters(document: dict, path: str, method: str = "get") -> dict[str, str]:
    return {p["name"]: p.get("description", "")
            for p in document["paths"][path][method].get("parameters", [])}


def test_log_routes_document_timestamps_and_since(tmp_path) -> None:
    document = build_app(tmp_path).openapi()
    for path in (f"{RUN}/logs", f"{RUN}/logstream", f"{RUN}/logstream/sse"):
        documented = parameters(document, path)
        for name in ("timestamps", "sinceSeconds", "sinceTime"):
            assert documented.get(name), (path, name, documented)


def test_the_stop_route_documents_force() -> None:
    app = FastAPI()
    app.include_router(runs_router)
    [path] = [p for p in app.openapi()["paths"] if p.endswith("/stop")]
    assert "grace" in parameters(app.openapi(), path, "put")["force"].lower()
