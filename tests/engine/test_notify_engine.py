"""Slack and Email receivers of a workflow get one message when a real run ends."""

from __future__ import annotations

import email
import email.policy

import pytest

from cyclone.engine.config import EngineConfig, SmtpConfig

from .harness import (
    BACKENDS,
    NAMESPACE,
    allow_local_addresses,
    overall,
    running_env,
    shell_stage,
    workflow,
    workflow_run,
)
from .receiver import http_receiver
from .smtp import smtp_server

MAILBOX = "dev@example.com"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_slack_and_email_receivers_each_get_one_message_naming_the_run_and_phase(
    tmp_path, backend
):
    async with http_receiver() as slack, smtp_server() as (smtp_port, mails):
        config = EngineConfig(
            gc_enabled=False, watch_pod_events=False,
            smtp=SmtpConfig(host="127.0.0.1", port=smtp_port, sender="ci@example.com"),
        )
        async with running_env(tmp_path, config, backend=backend) as env:
            await allow_local_addresses(env.cluster)
            await env.apply(
                shell_stage("build", "exit 3"),
                workflow("wf", [{"name": "build"}], notification={
                    "policy": "Always",
                    "receivers": [{"type": "Slack", "addresses": [slack.url]},
                                  {"type": "Email", "addresses": [MAILBOX]}],
                }),
                workflow_run("nightly-7", "wf"),
            )
            await env.wait_run("nightly-7", lambda r: len(
                (r.get("status") or {}).get("notifications") or {}) == 2)
            # A reconcile of the finished run after the sending is where a second message
            # would go out if the sent ones were not recorded.
            assert env.engine is not None
            await env.engine.run_controller.requeue_and_wait(f"{NAMESPACE}/nightly-7")
            run = await env.run("nightly-7")
    assert overall(run)["phase"] == "Failed"
    recorded = run["status"]["notifications"]
    assert {address: entry["result"] for address, entry in recorded.items()} == {
        slack.url: "Succeeded", MAILBOX: "Succeeded",
    }
    [message] = slack.bodies
    assert "nightly-7" in message["text"] and "Failed" in message["text"]
    [raw] = mails
    mail = email.message_from_string(raw, policy=email.policy.default)
    assert mail["To"] == MAILBOX
    assert mail["Subject"].startswith("WorkflowRun cyclone-system/nightly-7 of workflow wf: Failed")
