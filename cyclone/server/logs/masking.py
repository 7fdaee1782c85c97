"""Masking of secret values in container logs.

Masking works line by line so that a value split across two chunks of the stream is
still found: a chunk's trailing partial line waits for the rest (or for the end of the
stream, or for the line to grow past `max_pending`). Values shorter than
`MIN_SECRET_LENGTH` are not masked: they would shred every log they appear in.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable

from cyclone.kube import kinds
from cyclone.kube.errors import ApiError
from cyclone.kube.protocol import Cluster

MASK = b"***"
MIN_SECRET_LENGTH = 3

log = logging.getLogger(__name__)


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


def _decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


async def pod_secret_values(cluster: Cluster, pod: dict) -> list[bytes]:
    """The values of every Secret the pod's containers can see (env and volumes).

    Secrets that cannot be read (deleted, forbidden) are skipped.
    """
    namespace = pod.get("metadata", {}).get("namespace")
    spec = pod.get("spec") or {}
    wanted: dict[str, set[str] | None] = {}

    def want(secret: str | None, key: str | None) -> None:
        if not secret:
            return
        if key is None:
            wanted[secret] = None
        elif wanted.get(secret, set()) is not None:
            wanted.setdefault(secret, set()).add(key)  # type: ignore[union-attr]

    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for env in container.get("env") or []:
            ref = ((env.get("valueFrom") or {}).get("secretKeyRef")) or {}
            want(ref.get("name"), ref.get("key"))
        for source in container.get("envFrom") or []:
            want((source.get("secretRef") or {}).get("name"), None)
    for volume in spec.get("volumes") or []:
        secret = volume.get("secret") or {}
        want(secret.get("secretName"), None)
        for projected in (volume.get("projected") or {}).get("sources") or []:
            want((projected.get("secret") or {}).get("name"), None)

    values: list[bytes] = []
    for name, keys in wanted.items():
        try:
            secret = await cluster.get(kinds.SECRET, name, namespace)
        except ApiError as err:
            log.debug("secret %s/%s not readable for masking: %s", namespace, name, err)
            continue
        data = {k: _decode(v) for k, v in (secret.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
        for key, value in data.items():
            if value is not None and (keys is None or key in keys):
                values.append(value)
                values.extend(_json_string_leaves(value))
    return values


_SECRET_FIELDS = {"password", "token", "bearerToken", "kubeConfig", "value", "secret"}


def _json_string_leaves(value: bytes) -> list[bytes]:
    """Secret fields inside a JSON document (integration Secrets hold their spec as JSON)."""
    import json

    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return []
    leaves: list[bytes] = []

    def walk(node: object, key: str | None) -> None:
        if isinstance(node, dict):
            for child_key, child in node.items():
                walk(child, child_key)
        elif isinstance(node, list):
            for child in node:
                walk(child, key)
        elif isinstance(node, str) and key in _SECRET_FIELDS:
            leaves.append(node.encode())

    walk(doc, None)
    return leaves
