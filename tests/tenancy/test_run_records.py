"""What a run records about how it started (who started it, the stage specs it ran with)
is written by Cyclone, never taken from the tenant: a tenant cannot make its run claim the
admin started it, nor plant a spec record, nor have the record copy a credential, nor have
its new run's data collected at once (`/storage/cleanup`'s mark)."""

from __future__ import annotations

import json

from cyclone.api import keys
from cyclone.engine.core.gcpod import ANNOTATION_COLLECT_NOW
from cyclone.kube import kinds

from .flows import apply_flow, expect, shell_stage, start_run

SCM_TOKEN = "forged-scm-token-5c1e"


async def test_a_tenant_cannot_forge_its_runs_starter_or_spec_record(stack):
    tenant = stack.a
    expect(await tenant.http.post("/integrations", json={
        "metadata": {"name": "scm"},
        "spec": {"type": "SCM", "scm": {"type": "GitHub", "server": "https://github.com",
                                        "token": SCM_TOKEN}}}), 201)
    await apply_flow(tenant.http, "rec", "ci",
                     [shell_stage("leak", f"echo {SCM_TOKEN}")])
    run = await start_run(tenant.http, "rec", "ci", {"metadata": {"annotations": {
        keys.ANNOTATION_STARTED_BY: "the admin via the web UI",
        keys.ANNOTATION_STAGE_SPECS: '{"leak": {"planted": true}}',
        ANNOTATION_COLLECT_NOW: "true"}}})
    stored = await stack.cluster.get(kinds.WORKFLOW_RUN, run["metadata"]["name"],
                                     tenant.namespace)
    annotations = stored["metadata"]["annotations"]
    token_id = expect(await stack.admin.get(f"/tenants/{tenant.name}/tokens"),
                      200)["items"][0]["id"]
    assert annotations[keys.ANNOTATION_STARTED_BY] == (
        f"token {token_id} of tenant {tenant.name} via the API")
    record = json.loads(annotations[keys.ANNOTATION_STAGE_SPECS])
    assert "planted" not in record["leak"]
    assert record["leak"]["pod"]["spec"]["containers"][0]["command"][2] == "echo ***"
    assert SCM_TOKEN not in json.dumps(stored)
    assert ANNOTATION_COLLECT_NOW not in annotations
