"""Secret values a stage writes as results never reach `status.stages.*.outputs` in clear."""

from __future__ import annotations

import base64
import json

import pytest

from cyclone.api import keys

from .harness import (
    BACKENDS,
    NAMESPACE,
    outputs,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

RENDERED = "rendered-secret-0123"
REFERENCED = "env-secret-4567"
MULTILINE = "first-line-abcdef\nsecond-line-ghijkl\n"
INTEGRATION = "integration-token-890"


def _secret(name: str, data: dict[str, str], labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels or {}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def _objects(script: str) -> list[dict]:
    stage = shell_stage("leak", script)
    stage["spec"]["pod"]["spec"]["containers"][0]["env"] = [
        {"name": "RENDERED", "value": f"${{secrets.{NAMESPACE}:rendered/data.value}}"},
        {"name": "REFERENCED", "valueFrom": {"secretKeyRef": {"name": "referenced",
                                                              "key": "value"}}},
    ]
    stage["spec"]["pod"]["spec"]["volumes"] = [
        {"name": "multi", "secret": {"secretName": "multiline"}}]
    stage["spec"]["pod"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "multi", "mountPath": "/secret"}]
    spec = json.dumps({"type": "SCM", "scm": {"type": "GitHub", "token": INTEGRATION}})
    return [
        _secret("rendered", {"value": RENDERED}),
        _secret("referenced", {"value": REFERENCED}),
        _secret("multiline", {"value": MULTILINE}),
        _secret("github", {"integration": spec}, {keys.LABEL_INTEGRATION_TYPE: "SCM"}),
        stage,
        workflow("wf", [{"name": "leak"}]),
        workflow_run("r1", "wf"),
    ]


RESULTS = (
    'R=/cyclone/results/__result__; '
    'echo "rendered:$RENDERED" >> $R; '
    'echo "referenced:x-$REFERENCED-y" >> $R; '
    'echo "line2:$(sed -n 2p /secret/value)" >> $R; '
    f'echo "integration:{INTEGRATION}" >> $R; '
    'echo "plain:visible" >> $R'
)


async def test_secret_values_in_results_are_masked(env):
    await env.apply(*_objects(RESULTS))
    run = await env.wait_phase("r1", "Succeeded", "Failed", within=60)
    assert stage_status(run, "leak")["phase"] == "Succeeded", json.dumps(run["status"])
    assert outputs(run, "leak") == {"rendered": "***", "referenced": "x-***-y",
                                    "line2": "***", "integration": "***",
                                    "plain": "visible"}
    text = json.dumps(run["status"])
    for secret in (RENDERED, REFERENCED, "second-line-ghijkl", INTEGRATION):
        assert secret not in text


async def test_a_log_tail_taken_as_termination_message_is_masked(env):
    objects = _objects('echo "leak:$REFERENCED"; exit 3')
    objects[4]["spec"]["pod"]["spec"]["containers"][0]["terminationMessagePolicy"] = \
        "FallbackToLogsOnError"
    await env.apply(*objects)
    run = await env.wait_phase("r1", "Failed", within=60)
    assert REFERENCED not in json.dumps(run["status"])
    assert outputs(run, "leak") == {"leak": "***"}
