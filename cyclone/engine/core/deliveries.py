"""Which signed SCM deliveries were seen already, so that a replay starts nothing.

A provider's signature covers the body, not the delivery id header, so whoever captured one
signed delivery could post it again under a new id (or none) and start another run. A
delivery is therefore known by a digest of what is signed and where it was sent (provider,
event type, integration, body); the record keeps each digest, with a digest of the
delivery id that brought it, until its window ends. Within the window:

- the same digest under the same delivery id is the provider retrying the delivery: it goes
  ahead, and finds the runs it started (their names come from the delivery id);
- the same digest under any other delivery id is a replay: it starts nothing.

The record is a mapping digest -> ``"{expiry} {delivery digest}"``, the data of a ConfigMap
in the tenant's namespace, bounded to `MAX_RECORDED` entries.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cyclone.engine.core.timefmt import parse_rfc3339, rfc3339

DEFAULT_REPLAY_WINDOW_SECONDS = 3600.0
MAX_RECORDED = 3000
"""About 110 bytes each: the record stays far below an object's 1 MiB limit."""


def delivery_digest(provider: str, event: str, integration: str, body: bytes) -> str:
    """What identifies a signed delivery, whatever delivery id it comes with."""
    digest = hashlib.sha256()
    for part in (provider, event, integration):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
    digest.update(body)
    return digest.hexdigest()


def delivery_id_digest(delivery_id: str) -> str:
    return hashlib.sha256(delivery_id.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Seen:
    expires: datetime
    delivery: str
    """`delivery_id_digest` of the delivery id that first brought it."""


class Verdict(enum.StrEnum):
    NEW = "new"
    RETRY = "retry"
    REPLAY = "replay"


def parse_record(data: Mapping[str, str] | None) -> dict[str, Seen]:
    """The entries of a stored record; entries that do not parse are dropped."""
    entries: dict[str, Seen] = {}
    for digest, value in (data or {}).items():
        expires, _, delivery = str(value).partition(" ")
        try:
            entries[digest] = Seen(parse_rfc3339(expires), delivery)
        except (TypeError, ValueError):
            continue
    return entries


def render_record(entries: Mapping[str, Seen]) -> dict[str, str]:
    return {digest: f"{rfc3339(seen.expires)} {seen.delivery}"
            for digest, seen in entries.items()}


def claim(entries: Mapping[str, Seen], digest: str, delivery_id: str, now: datetime,
          window: timedelta, max_entries: int = MAX_RECORDED
          ) -> tuple[Verdict, dict[str, Seen] | None]:
    """What a delivery is, and the record to store (None: leave it as it is).

    Expired entries are dropped when the record is written; past `max_entries` the entries
    closest to expiry go first.
    """
    live = {d: s for d, s in entries.items() if s.expires > now}
    seen = live.get(digest)
    delivery = delivery_id_digest(delivery_id)
    if seen is not None:
        return (Verdict.RETRY if seen.delivery == delivery else Verdict.REPLAY), None
    live[digest] = Seen(now + window, delivery)
    if len(live) > max_entries:
        kept = sorted(live.items(), key=lambda item: item[1].expires)[-max_entries:]
        live = dict(kept)
    return Verdict.NEW, live
