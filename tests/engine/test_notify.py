"""Notification senders: Webhook, Slack and Email payloads, and the policy."""

from __future__ import annotations

import email

import pytest

from cyclone.engine.config import SmtpConfig
from cyclone.engine.notify import notification_due, send_notification

from .receiver import http_receiver
from .smtp import smtp_server

RUN = {
    "apiVersion": "cyclone.dev/v1alpha1", "kind": "WorkflowRun",
    "metadata": {"name": "r1", "namespace": "cyclone-system"},
    "spec": {"workflowRef": {"name": "wf"}},
    "status": {
        "overall": {"phase": "Failed", "reason": "StageFailed", "message": "failed stages: b"},
        "stages": {"a": {"status": {"phase": "Succeeded"}}, "b": {"status": {"phase": "Failed"}}},
    },
}


@pytest.mark.parametrize(
    ("policy", "phase", "due"),
    [("Always", "Succeeded", True), ("Always", "Failed", True), (None, "Cancelled", True),
     ("Success", "Succeeded", True), ("Success", "Failed", False),
     ("Failure", "Failed", True), ("Failure", "Cancelled", True),
     ("Failure", "Succeeded", False), ("Sometimes", "Failed", False)],
)
def test_notification_policy(policy, phase, due):
    assert notification_due(policy, phase) is due


async def test_webhook_receives_the_run_object():
    async with http_receiver() as receiver:
        result = await send_notification("Webhook", receiver.url, RUN, SmtpConfig(),
                                         allow_local=True)
        [body] = await receiver.wait_for(1)
    assert result.result == "Succeeded"
    assert body == RUN


async def test_slack_receives_a_slack_message():
    async with http_receiver() as receiver:
        result = await send_notification("Slack", receiver.url, RUN, SmtpConfig(),
                                         allow_local=True)
        [body] = await receiver.wait_for(1)
    assert result.result == "Succeeded"
    assert "r1" in body["text"] and "Failed" in body["text"]
    [attachment] = body["attachments"]
    assert attachment["color"] == "danger"
    assert {f["title"]: f["value"] for f in attachment["fields"]} == {
        "a": "Succeeded", "b": "Failed",
    }


async def test_receiver_error_is_recorded_not_raised():
    async with http_receiver(status=500) as receiver:
        result = await send_notification("Webhook", receiver.url, RUN, SmtpConfig(),
                                         allow_local=True)
    assert result.result == "Failed"
    assert "500" in result.message
    unreachable = await send_notification("Webhook", "http://127.0.0.1:9/x", RUN, SmtpConfig(),
                                          allow_local=True)
    assert unreachable.result == "Failed"


@pytest.mark.parametrize("kind", ["Webhook", "Slack"])
async def test_a_local_receiver_is_refused_unless_the_tenant_allows_it(kind):
    async with http_receiver() as receiver:
        refused = await send_notification(kind, receiver.url, RUN, SmtpConfig())
        assert refused.result == "Failed"
        assert "refused" in refused.message and "loopback" in refused.message
        assert "allowLocalAddresses" in refused.message
        assert receiver.bodies == []
        allowed = await send_notification(kind, receiver.url, RUN, SmtpConfig(),
                                          allow_local=True)
        assert allowed.result == "Succeeded"


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]:9/x", "http://localhost:9/x",
                                 "http://0.0.0.0:9/x"])
async def test_metadata_and_this_host_receivers_are_refused(url):
    result = await send_notification("Webhook", url, RUN, SmtpConfig())
    assert result.result == "Failed"
    assert "refused" in result.message


async def test_email_goes_through_the_configured_smtp_server():
    async with smtp_server() as (port, messages):
        smtp = SmtpConfig(host="127.0.0.1", port=port, sender="ci@example.com")
        result = await send_notification("Email", "dev@example.com", RUN, smtp)
    assert result.result == "Succeeded", result.message
    [message] = messages
    assert "To: dev@example.com" in message
    assert "From: ci@example.com" in message
    assert "WorkflowRun cyclone-system/r1" in message


async def test_a_mail_sent_again_has_the_same_message_id_and_another_address_another():
    other_run = {**RUN, "metadata": {**RUN["metadata"], "uid": "another-uid"}}
    async with smtp_server() as (port, messages):
        smtp = SmtpConfig(host="127.0.0.1", port=port, sender="ci@example.com")
        for run, address in ((RUN, "dev@example.com"), (RUN, "dev@example.com"),
                             (RUN, "ops@example.com"), (other_run, "dev@example.com")):
            assert (await send_notification("Email", address, run, smtp)).result == "Succeeded"
    ids = [header(message, "Message-ID") for message in messages]
    deliveries = [header(message, "X-Cyclone-Delivery") for message in messages]
    assert ids[0] == ids[1] and len(set(ids)) == 3, ids
    assert deliveries[0] == deliveries[1] and len(set(deliveries)) == 3, deliveries


def header(message: str, name: str) -> str:
    return " ".join(email.message_from_string(message)[name].split())


async def test_unknown_receiver_type_fails():
    result = await send_notification("Pager", "x", RUN, SmtpConfig())
    assert result.result == "Failed"
