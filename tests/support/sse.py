"""Server-sent events read back by tests: one parser for every stream the server sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

COMMENT = "comment"


@dataclass(frozen=True)
class SseEvent:
    """One event: `name` (`message` when the event has none, `comment` for a `:` line),
    its `data` lines joined by newlines, and its `id`."""

    name: str
    data: str = ""
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data) if self.data else None


class SseParser:
    """Fed one line at a time (without its newline); answers each event as it completes."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def feed(self, line: str) -> SseEvent | None:
        if line.startswith(":"):
            return SseEvent(COMMENT, line[1:].strip())
        if line:
            key, _, value = line.partition(":")
            self.fields.setdefault(key, []).append(value.removeprefix(" "))
            return None
        fields, self.fields = self.fields, {}
        if not fields:
            return None
        return SseEvent((fields.get("event") or ["message"])[-1],
                        "\n".join(fields.get("data") or []), (fields.get("id") or [None])[-1])


def sse_events(lines: Iterable[str]) -> Iterator[SseEvent]:
    parser = SseParser()
    for line in lines:
        if (event := parser.feed(line)) is not None:
            yield event


async def sse_events_async(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    parser = SseParser()
    async for line in lines:
        if (event := parser.feed(line)) is not None:
            yield event


def parse_sse(text: str) -> list[SseEvent]:
    """The events in `text`, a chunk of a stream that ends at an event's end."""
    return list(sse_events(text.split("\n")))
