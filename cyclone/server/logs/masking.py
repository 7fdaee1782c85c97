"""Masking of secret values in container logs.

Masking works line by line so that a value split across two chunks of the stream is
still found: a chunk's trailing partial line waits for the rest (or for the end of the
stream, or for the line to grow past `max_pending`). Values shorter than
`MIN_SECRET_LENGTH` are not masked: they would shred every log they appear in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = b"***"
MIN_SECRET_LENGTH = 3


class SecretMasker:
    """Replaces every occurrence of the given secret values with `***`."""

    def __init__(self, values: Iterable[str | bytes]) -> None:
        candidates: set[bytes] = set()
        for value in values:
            raw = value.encode() if isinstance(value, str) else value
            for piece in (raw, *raw.splitlines()):
                piece = piece.strip(b"\r\n")
                if len(piece.strip()) >= MIN_SECRET_LENGTH:
                    candidates.add(piece)
        ordered = sorted(candidates, key=len, reverse=True)
        self._pattern = re.compile(b"|".join(re.escape(v) for v in ordered)) if ordered else None

    def mask(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        return self._pattern.sub(MASK, data)


class LineMaskingStream:
    """Feeds chunks of a log through a masker, releasing only complete lines.

    `feed` and `flush` return the masked bytes to store and how many source bytes they
    stand for, so a reader can resume the source exactly after what was stored.
    """

    def __init__(self, masker: SecretMasker, *, max_pending: int = 64 * 1024) -> None:
        self.masker = masker
        self.received = 0
        self._pending = b""
        self._max_pending = max_pending

    def feed(self, chunk: bytes) -> tuple[bytes, int]:
        self.received += len(chunk)
        self._pending += chunk
        cut = self._pending.rfind(b"\n") + 1
        if cut == 0 and len(self._pending) > self._max_pending:
            cut = len(self._pending)
        if cut == 0:
            return b"", 0
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self.masker.mask(ready), len(ready)

    def flush(self) -> tuple[bytes, int]:
        ready, self._pending = self._pending, b""
        return self.masker.mask(ready), len(ready)
