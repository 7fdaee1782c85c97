"""The commit status of a run started by a delivery links where the server's web URL
template says, the same link the engine's notifications carry."""

from __future__ import annotations

import json

import pytest

from cyclone.api import keys
from cyclone.engine.core.scm import Provider
from cyclone.engine.core.serversettings import ServerSettings
from cyclone.engine.core.weburl import run_link
from cyclone.server import create_app
from cyclone.server.webhooks import router as webhook_router

from . import payloads as p
from .conftest import ADMIN_TOKEN
from .support import (
    PROJECT,
    WORKFLOW,
    create_integration,
    create_resource,
    create_trigger,
    create_workflow,
    post_event,
    runs,
    scm_trigger_object,
)

TEMPLATE = "https://ci.example.com/{tenant}/{project}/{workflow}/{run}"


@pytest.fixture
async def app(cluster, tmp_path):
    application = create_app(cluster=cluster, data_dir=tmp_path / "data",
                             admin_token=ADMIN_TOKEN, extra_routers=[webhook_router],
                             server_url="http://cyclone.test:7099",
                             server_settings=ServerSettings(web_url_template=TEMPLATE))
    async with application.router.lifespan_context(application):
        yield application


async def test_the_target_url_of_a_delivered_run_is_the_templates_link(admin, cluster,
                                                                       anonymous):
    await create_integration(admin, "gh", "GitHub")
    await create_workflow(cluster)
    await create_resource(cluster, "src", "Git")
    await create_trigger(cluster, scm_trigger_object("on-push", "gh", "octo/app",
                                                     push={"enabled": True}))
    response = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                                p.encode(p.github_push("main")))
    assert response.status_code == 200, response.text
    [run] = await runs(cluster)
    event = json.loads(run["metadata"]["annotations"][keys.ANNOTATION_SCM_EVENT])
    name = run["metadata"]["name"]
    assert event["targetURL"] == f"https://ci.example.com/system/{PROJECT}/{WORKFLOW}/{name}"
    assert event["targetURL"] == run_link(TEMPLATE, "http://elsewhere", run)
