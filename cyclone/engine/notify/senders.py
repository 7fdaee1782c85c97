"""Send a terminal run to Webhook, Slack and Email receivers.

Every sender returns a `NotificationResult` instead of raising: a receiver that is down
is recorded in `status.notifications` as a failure, it never blocks the run. Webhook and
Slack addresses are the tenant's choice: one on a local address
(`cyclone.engine.outbound`) is refused, and recorded as failed with the reason,
unless the tenant's spec has `allowLocalAddresses`.

Webhook and Slack requests carry ``X-Cyclone-Delivery: <run uid>:<address>``, the same on
every attempt: a notification is recorded after it is sent, so an engine killed in between
sends it again, and a receiver that must act once drops a delivery id it has seen. A mail
carries the same header and a ``Message-ID`` derived from it, by which mail systems
recognise a repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import string
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote

import httpx

from cyclone.engine.config import SmtpConfig
from cyclone.engine.core.phases import SUCCEEDED
from cyclone.engine.outbound import guarded_client, refused_by

RESULT_SUCCEEDED = "Succeeded"
RESULT_FAILED = "Failed"
DELIVERY_HEADER = "X-Cyclone-Delivery"


def delivery_id(run_uid: str, target: str) -> str:
    """The id of one outbound delivery (a notification's address, a delegation's stage)
    of one run, the same however often it is sent; any byte a header may not hold is
    percent-encoded."""
    return f"{run_uid}:{quote(target, safe=string.punctuation)}"


@dataclass(frozen=True)
class NotificationResult:
    result: str
    message: str = ""

    def as_status(self) -> dict:
        return {"result": self.result, "message": self.message}


def notification_due(policy: str | None, overall_phase: str) -> bool:
    """Whether the workflow's policy (Always|Success|Failure) asks for a notification."""
    policy = policy or "Always"
    if policy == "Always":
        return True
    if policy == "Success":
        return overall_phase == SUCCEEDED
    if policy == "Failure":
        return overall_phase != SUCCEEDED
    return False


def _run_summary(run: dict, link: str | None = None) -> str:
    meta = run.get("metadata", {})
    overall = (run.get("status") or {}).get("overall") or {}
    workflow = ((run.get("spec") or {}).get("workflowRef") or {}).get("name", "")
    text = f"WorkflowRun {meta.get('namespace')}/{meta.get('name')} of workflow {workflow}: "
    text += str(overall.get("phase"))
    if overall.get("reason"):
        text += f" ({overall['reason']})"
    if overall.get("message"):
        text += f" — {overall['message']}"
    if link:
        text += f"\n{link}"
    return text


async def _post(url: str, payload: dict, http_timeout: float,
                allow_local: bool, delivery: str | None,
                endpoint: str | None = None) -> NotificationResult:
    headers = {DELIVERY_HEADER: delivery} if delivery else None
    try:
        async with guarded_client(allow_local=allow_local, timeout=http_timeout) as client:
            response = await client.post(url, json=payload, headers=headers)
    except (httpx.HTTPError, ValueError) as exc:
        if endpoint is not None:
            return NotificationResult(RESULT_FAILED, f"POST to {endpoint}: {_kind_of(exc)}")
        return _failure(url, exc)
    if response.is_success:
        return NotificationResult(RESULT_SUCCEEDED, f"HTTP {response.status_code}")
    if endpoint is not None:
        return NotificationResult(RESULT_FAILED, f"HTTP {response.status_code}")
    return NotificationResult(RESULT_FAILED, f"HTTP {response.status_code}: {response.text[:200]}")


def _kind_of(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.TransportError):
        return "connection failed"
    return "request failed"


def _failure(url: str, exc: Exception) -> NotificationResult:
    if isinstance(exc, httpx.HTTPError):
        refused = refused_by(exc)
        if refused is not None:
            return NotificationResult(RESULT_FAILED, f"POST {url}: refused: {refused}")
        return NotificationResult(RESULT_FAILED, f"POST {url}: {exc!r}")
    return NotificationResult(RESULT_FAILED, f"POST {url}: {exc}")


async def send_webhook(url: str, run: dict, http_timeout: float = 10.0, *,
                       allow_local: bool = False,
                       delivery: str | None = None) -> NotificationResult:
    """POST the run object as JSON."""
    return await _post(url, run, http_timeout, allow_local, delivery)


async def send_to_endpoint(name: str, url: str, run: dict, http_timeout: float = 10.0, *,
                           delivery: str | None = None) -> NotificationResult:
    """POST the run object as JSON to a server-wide endpoint. Its result lands in the run's
    status, which the run's tenant reads, while the admin's URL may hold a token and its
    answer may quote it: the result names the endpoint and the HTTP status or the kind of
    failure only."""
    return await _post(url, run, http_timeout, True, delivery, endpoint=name)


async def send_slack(url: str, run: dict, http_timeout: float = 10.0, *,
                     allow_local: bool = False, delivery: str | None = None,
                     link: str | None = None) -> NotificationResult:
    """POST a Slack incoming-webhook message describing the run."""
    overall = ((run.get("status") or {}).get("overall") or {}).get("phase")
    color = "good" if overall == SUCCEEDED else "danger"
    stages = (run.get("status") or {}).get("stages") or {}
    fields = [
        {"title": name, "value": str((s.get("status") or {}).get("phase")), "short": True}
        for name, s in stages.items()
    ]
    payload = {
        "text": _run_summary(run, link),
        "attachments": [{"color": color, "fields": fields}],
    }
    return await _post(url, payload, http_timeout, allow_local, delivery)


def message_id(delivery: str) -> str:
    """A mail's ``Message-ID``, the same for every attempt of one delivery."""
    return f"<{hashlib.sha256(delivery.encode()).hexdigest()[:40]}@notifications.cyclone.dev>"


def _send_mail_blocking(smtp: SmtpConfig, address: str, subject: str, body: str,
                        delivery: str) -> None:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = address
    message["Subject"] = subject
    message["Message-ID"] = message_id(delivery)
    message[DELIVERY_HEADER] = delivery
    message.set_content(body)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.send_message(message)


async def send_email(smtp: SmtpConfig, address: str, run: dict, *,
                     delivery: str | None = None, link: str | None = None
                     ) -> NotificationResult:
    """Send a plain-text mail through the engine's SMTP server (the run's link in its body)."""
    summary = _run_summary(run)
    delivery = delivery or delivery_id(((run.get("metadata") or {}).get("uid") or ""), address)
    try:
        await asyncio.to_thread(_send_mail_blocking, smtp, address, summary,
                                _run_summary(run, link) + "\n", delivery)
    except (OSError, smtplib.SMTPException) as exc:
        return NotificationResult(RESULT_FAILED, f"SMTP to {address}: {exc!r}")
    return NotificationResult(RESULT_SUCCEEDED, "sent")


async def send_notification(
    receiver_type: str, address: str, run: dict, smtp: SmtpConfig, http_timeout: float = 10.0,
    *, allow_local: bool = False, link: str | None = None,
) -> NotificationResult:
    """Dispatch on the receiver type (Webhook, Slack, Email); `allow_local` is the
    tenant's `allowLocalAddresses`. Every receiver gets the run's delivery id for
    `address`; Slack and Email messages end with the run's `link`."""
    delivery = delivery_id(((run.get("metadata") or {}).get("uid") or ""), address)
    if receiver_type == "Webhook":
        return await send_webhook(address, run, http_timeout, allow_local=allow_local,
                                  delivery=delivery)
    if receiver_type == "Slack":
        return await send_slack(address, run, http_timeout, allow_local=allow_local,
                                delivery=delivery, link=link)
    if receiver_type == "Email":
        return await send_email(smtp, address, run, delivery=delivery, link=link)
    return NotificationResult(RESULT_FAILED, f"unknown receiver type {receiver_type!r}")
