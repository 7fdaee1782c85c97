"""SCM webhooks as pure functions: detect the provider, parse its payload into
`ScmEvent`s, verify signatures, match triggers and compute the run's revision."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from cyclone.engine.core.scm import bitbucket, github, gitlab, svn
from cyclone.engine.core.scm.events import EventType, PayloadError, Provider, ScmEvent
from cyclone.engine.core.scm.matching import (
    delivery_run_name,
    trigger_matches,
    with_revision,
)
from cyclone.engine.core.scm.signatures import signed_headers, verify

EVENT_HEADERS = (
    ("x-github-event", Provider.GITHUB),
    ("x-gitlab-event", Provider.GITLAB),
    ("x-event-key", Provider.BITBUCKET),
    ("x-subversion-event", Provider.SVN),
)
DELIVERY_HEADERS = ("x-github-delivery", "x-gitlab-event-uuid", "x-gitlab-webhook-uuid",
                    "x-request-id", "x-subversion-delivery")


def detect_provider(headers: Mapping[str, str]) -> tuple[Provider, str] | None:
    """The provider and its event name, from headers with lower-case names."""
    for header, provider in EVENT_HEADERS:
        value = headers.get(header)
        if value:
            return provider, value.strip()
    return None


def delivery_id(headers: Mapping[str, str], body: bytes) -> str:
    """The provider's delivery id; without one, a digest of the body stands in."""
    for header in DELIVERY_HEADERS:
        value = (headers.get(header) or "").strip()
        if value:
            return value
    return "body-" + hashlib.sha256(body).hexdigest()


def parse_events(provider: Provider, event: str, body: bytes) -> list[ScmEvent]:
    """The events of a delivery; raises `PayloadError` on a malformed body."""
    parser = {
        Provider.GITHUB: github.parse,
        Provider.GITLAB: gitlab.parse,
        Provider.BITBUCKET: bitbucket.parse,
        Provider.SVN: svn.parse,
    }[provider]
    try:
        return parser(event, body)
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"unexpected {provider} payload: {exc}") from exc


__all__ = [
    "EventType",
    "PayloadError",
    "Provider",
    "ScmEvent",
    "delivery_id",
    "delivery_run_name",
    "detect_provider",
    "parse_events",
    "signed_headers",
    "trigger_matches",
    "verify",
    "with_revision",
]
