"""Masking of secret values in a container log stream.

The rule itself (which strings stand for a secret, and what replaces them) is
`cyclone.engine.core.masking`, shared with the engine's masking of stage outputs. This
module feeds a stream through it so that a value split across two chunks is still found: a
chunk's trailing partial line waits for the rest (or the end of the stream). A line that
grows past `max_pending` is released before its newline, but the last (longest secret - 1)
bytes are kept back, and a secret straddling the cut moves the cut past it, so no secret is
ever stored in two halves.
"""

from __future__ import annotations

from cyclone.engine.core.masking import MASK, MIN_SECRET_LENGTH, Masker

SecretMasker = Masker

__all__ = ["MASK", "MIN_SECRET_LENGTH", "LineMaskingStream", "SecretMasker"]


class LineMaskingStream:
    """Feeds chunks of a log through a masker, releasing only what is safe to mask.

    `feed` and `flush` return the masked bytes to store and how many source bytes they
    stand for, so a reader can resume the source exactly after what was stored.
    """

    def __init__(self, masker: Masker, *, max_pending: int = 64 * 1024) -> None:
        self.masker = masker
        self.received = 0
        self._pending = b""
        self._max_pending = max_pending

    def feed(self, chunk: bytes) -> tuple[bytes, int]:
        self.received += len(chunk)
        self._pending += chunk
        cut = self._pending.rfind(b"\n") + 1
        if cut == 0 and len(self._pending) > self._max_pending:
            held = max(self.masker.longest - 1, 0)
            cut = self.masker.safe_cut(self._pending, max(len(self._pending) - held, 0))
        if cut <= 0:
            return b"", 0
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self.masker.mask(ready), len(ready)

    def flush(self) -> tuple[bytes, int]:
        ready, self._pending = self._pending, b""
        return self.masker.mask(ready), len(ready)
