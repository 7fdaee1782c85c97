"""Secrets never leave in clear: not in stage logs, not in stage outputs, not in answers.

The attacker here is a tenant's own stage (it prints and reports every secret it can see)
and anyone reading what the API answers about integrations and triggers.
"""

from __future__ import annotations

import asyncio
import base64
import json

from cyclone.api.credentials import MASK
from cyclone.kube import kinds

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run

RENDERED = "rendered-secret-5b7e1c"
REFERENCED = "secretkeyref-value-9d2f4a"
PEM = ("-----BEGIN PRIVATE KEY-----\n"
       "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
       "MzEfYyjiWA4R4M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
       "-----END PRIVATE KEY-----\n")
PEM_LINES = [line for line in PEM.splitlines() if not line.startswith("-----")]
STRADDLER = "straddling-secret-3c8e0b71"
SCM_TOKEN = "scm-integration-token-71a3"
GENERAL_VALUE = "general-integration-value-e42c"
WEBHOOK_SECRET = "scm-webhook-secret-02bd"
TRIGGER_SECRET = "trigger-webhook-secret-8f1a"
CLEAR = (RENDERED, REFERENCED, *PEM_LINES, STRADDLER, SCM_TOKEN, GENERAL_VALUE)

SCRIPT = f"""
R=/cyclone/results/__result__
echo "rendered=$RENDERED"
echo "referenced=$REFERENCED"
cat /secret/pem
echo "integration={SCM_TOKEN} general={GENERAL_VALUE}"
head -c 65530 /dev/zero | tr '\\0' x; printf '%s' "$STRADDLER"; echo " after-straddler"
echo "rendered:$RENDERED" >> $R
echo "referenced:x-$REFERENCED-y" >> $R
echo "pem:$(sed -n 2p /secret/pem)" >> $R
echo "integration:{SCM_TOKEN}" >> $R
echo "plain:visible" >> $R
echo END-OF-LOG
"""


def _secret(name: str, namespace: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


async def _integrations(http) -> None:
    expect(await http.post("/integrations", json={
        "metadata": {"name": "github"}, "spec": {"type": "SCM", "scm": {
            "type": "GitHub", "server": "https://github.com", "user": "bot",
            "token": SCM_TOKEN, "webhookSecret": WEBHOOK_SECRET}}}), 201)
    expect(await http.post("/integrations", json={
        "metadata": {"name": "env"}, "spec": {"type": "General", "general": [
            {"name": "API_KEY", "value": GENERAL_VALUE}]}}), 201)


async def _stored_logs(http, project: str, workflow: str, run: str, within: float = 60.0
                       ) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        response = await http.get(f"{runs_path(project, workflow)}/{run}/logs",
                                  params={"stage": "leak"})
        if response.status_code == 200 and "END-OF-LOG" in response.text:
            return response.text
        assert loop.time() < deadline, (response.status_code, response.text[-2000:])
        await asyncio.sleep(0.5)


async def test_a_stage_printing_and_reporting_its_secrets_shows_only_masks(stack):
    tenant = stack.a
    worker = f"{tenant.namespace}-worker"
    await stack.cluster.create(_secret("app", tenant.namespace, {"rendered": RENDERED}))
    await stack.cluster.create(_secret("app", worker, {"referenced": REFERENCED, "pem": PEM,
                                                       "straddler": STRADDLER}))
    await _integrations(tenant.http)
    stage = shell_stage("leak", SCRIPT, volumes=[
        {"name": "pem", "secret": {"secretName": "app", "items": [
            {"key": "pem", "path": "pem"}]}}])
    container = stage["spec"]["pod"]["spec"]["containers"][0]
    container["env"] = [
        {"name": "RENDERED", "value": f"${{secrets.{tenant.namespace}:app/data.rendered}}"},
        {"name": "REFERENCED", "valueFrom": {"secretKeyRef": {"name": "app",
                                                              "key": "referenced"}}},
        {"name": "STRADDLER", "valueFrom": {"secretKeyRef": {"name": "app",
                                                             "key": "straddler"}}},
    ]
    container["volumeMounts"] = [{"name": "pem", "mountPath": "/secret"}]
    await apply_flow(tenant.http, "leaky", "ci", [stage])
    run = await start_run(tenant.http, "leaky", "ci")
    name = run["metadata"]["name"]
    done = await wait_run(tenant.http, "leaky", "ci", name)
    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]

    outputs = {o["key"]: o["value"] for o in done["status"]["stages"]["leak"]["outputs"]}
    assert outputs == {"rendered": "***", "referenced": "x-***-y", "pem": "***",
                       "integration": "***", "plain": "visible"}
    stored = json.dumps(await stack.cluster.get(kinds.WORKFLOW_RUN, name, tenant.namespace))
    logs = await _stored_logs(tenant.http, "leaky", "ci", name)
    for secret in CLEAR:
        assert secret not in stored, secret
        assert secret not in logs, secret
    assert "rendered=***" in logs and "referenced=***" in logs
    assert "*** after-straddler" in logs


async def test_integration_and_trigger_answers_never_carry_a_secret(stack):
    http = stack.a.http
    await _integrations(http)
    answers = [
        (await http.get("/integrations")).text,
        (await http.get("/integrations/github")).text,
        (await http.get("/integrations/env")).text,
        (await http.get("/integrations/cluster")).text,
    ]
    shown = expect(await http.get("/integrations/github"), 200)
    assert shown["spec"]["scm"]["token"] == MASK
    updated = await http.put("/integrations/github", json=shown)
    assert updated.status_code == 200, updated.text
    answers.append(updated.text)
    assert (await http.post("/integrations", json={
        "metadata": {"name": "odd"}, "spec": {"type": "SCM", "scm": {
            "scm": {"token": "misplaced-token"}}}})).status_code == 422

    await apply_flow(http, "hooks", "ci", [shell_stage("noop", "true")])
    path = "/projects/hooks/workflows/ci/workflowtriggers"
    trigger = {"metadata": {"name": "on-push"}, "spec": {"type": "SCM", "scm": {
        "secret": TRIGGER_SECRET, "repo": "owner/repo", "push": {"enabled": True}}}}
    created = await http.post(path, json=trigger)
    assert created.status_code == 201, created.text
    answers += [created.text, (await http.get(path)).text]
    answers.append((await http.get(f"{path}/on-push")).text)
    for answer in answers:
        for secret in (SCM_TOKEN, WEBHOOK_SECRET, GENERAL_VALUE, TRIGGER_SECRET):
            assert secret not in answer
    assert expect(await http.get(f"{path}/on-push"), 200)["spec"]["scm"]["secret"] == MASK
