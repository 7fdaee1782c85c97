"""The masking rule: which strings stand for a secret value, and how text is masked.

The engine masks stage outputs with it and the server's log collector masks stored logs
with it, so both hide the same things:

- a secret value is masked as a whole, and so is each piece a program may print on its
  own: of a multi-line value (a kubeconfig, a PEM key), every line, except that of a
  ``key: value`` or ``key=value`` line only the value counts and a ``key:`` heading does not;
  and every string inside a JSON document;
- values shorter than ``MIN_SECRET_LENGTH`` are not masked (they would shred every text
  they appear in), nor pieces shorter than ``MIN_PIECE_LENGTH`` (a short line of a
  kubeconfig is its syntax, not its secret);
- each occurrence becomes ``MASK``.

Where the values come from is decided here too, as pure functions over the objects: the
Secrets a pod reads (``pod_secret_refs``), a Secret's decoded values (``secret_values``),
the credentials of an integration (``integration_values``), and which of the two a Secret
gets (``masked_values``: an integration Secret is masked by its credentials only).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cyclone.api.credentials import strings_in
from cyclone.api.integration import integration_credential_values
from cyclone.engine.core.bindings import integration_spec
from cyclone.engine.core.tenancy import (
    RESERVED_SECRET_NAMES,
    TenantPolicy,
    secret_allowed,
    tenant_of,
)

MASK = "***"
MIN_SECRET_LENGTH = 3
MIN_PIECE_LENGTH = 8
_ASSIGNMENT = re.compile(rb"^\s*-?\s*[\"']?[\w.\-/]+[\"']?\s*[:=]\s*(.+?)\s*,?$")
_QUOTES = b"\"'"


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _pieces(raw: bytes) -> Iterable[bytes]:
    for line in raw.splitlines():
        assignment = _ASSIGNMENT.match(line)
        if assignment:
            yield assignment.group(1).strip(_QUOTES)
        line = line.strip()
        if line.endswith(b":") or (assignment and re.search(rb"\s", line)):
            continue
        yield line
    if raw[:1] in (b"{", b"["):
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return
        for leaf in strings_in(document):
            yield leaf.encode().strip()


def secret_candidates(value: str | bytes) -> set[bytes]:
    """The byte strings that are masked for one secret value."""
    raw = _as_bytes(value).strip()
    if len(raw) < MIN_SECRET_LENGTH:
        return set()
    found = {raw}
    if b"\n" in raw or raw[:1] in (b"{", b"["):
        found.update(p for p in _pieces(raw) if len(p) >= MIN_PIECE_LENGTH)
    return found


class Masker:
    """Replaces every occurrence of the candidates of the given secret values with ``MASK``.

    The longest candidate wins where several match at one place.
    """

    def __init__(self, values: Iterable[str | bytes]) -> None:
        candidates: set[bytes] = set()
        for value in values:
            candidates |= secret_candidates(value)
        ordered = sorted(candidates, key=len, reverse=True)
        self.longest = len(ordered[0]) if ordered else 0
        self._pattern = re.compile(b"|".join(re.escape(v) for v in ordered)) if ordered else None
        self._text_pattern = (re.compile("|".join(re.escape(v.decode(errors="replace"))
                                                   for v in ordered)) if ordered else None)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        return self._pattern.sub(MASK.encode(), data)

    def mask_text(self, text: str) -> str:
        if self._text_pattern is None:
            return text
        return self._text_pattern.sub(MASK, text)

    def mask_strings(self, value: Any) -> Any:
        """`value` (JSON-like data) with every string inside it masked: before it is
        serialised, so quoting, escaping or folding cannot split a secret."""
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, dict):
            return {key: self.mask_strings(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.mask_strings(item) for item in value]
        return value

    def safe_cut(self, data: bytes, cut: int) -> int:
        """A cut at or after ``cut`` that no candidate occurrence in ``data`` straddles.

        Releasing ``data[:cut]`` alone is safe when every candidate that starts before the
        cut also ends before it; a straddling occurrence moves the cut to its end.
        """
        if self._pattern is None or cut <= 0 or cut >= len(data):
            return cut
        start = max(0, cut - self.longest + 1)
        end = min(len(data), cut + self.longest - 1)
        for match in self._pattern.finditer(data, start, end):
            if match.start() < cut < match.end():
                cut = match.end()
        return cut


def mask_outputs(outputs: list[dict[str, str]], masker: Masker) -> list[dict[str, str]]:
    """Stage outputs (``[{key, value}]``) with every secret in their values masked."""
    if not masker:
        return outputs
    return [{**item, "value": masker.mask_text(str(item.get("value", "")))}
            for item in outputs]


SecretRefs = dict[str, frozenset[str] | None]
"""Secret name → the keys a pod reads from it (None: every key)."""


def pod_secret_refs(pod: Mapping[str, Any]) -> SecretRefs:
    """The Secrets a pod reads: ``secretKeyRef``, ``envFrom``, secret and projected volumes."""
    spec = pod.get("spec") or {}
    wanted: dict[str, set[str] | None] = {}

    def want(secret: str | None, key: str | None) -> None:
        if not secret:
            return
        if key is None or wanted.get(secret, set()) is None:
            wanted[secret] = None
            return
        wanted.setdefault(secret, set()).add(key)  # type: ignore[union-attr]

    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for env in container.get("env") or []:
            ref = ((env.get("valueFrom") or {}).get("secretKeyRef")) or {}
            want(ref.get("name"), ref.get("key"))
        for source in container.get("envFrom") or []:
            want((source.get("secretRef") or {}).get("name"), None)
    for volume in spec.get("volumes") or []:
        want((volume.get("secret") or {}).get("secretName"), None)
        for projected in (volume.get("projected") or {}).get("sources") or []:
            want((projected.get("secret") or {}).get("name"), None)
    return {name: (None if keys is None else frozenset(keys)) for name, keys in wanted.items()}


def referenced_secret_readable(meta_namespace: str, namespace: str, name: str) -> bool:
    """Whether a ``${secrets.<namespace>:<name>}`` of a run in ``meta_namespace`` is read for
    masking: only when its tenant may read it (the engine renders nothing else). Masking
    with another tenant's value would let a stage test guesses of it against its own log."""
    return secret_allowed(TenantPolicy(tenant_of(meta_namespace)), namespace, name)


def pod_secret_readable(name: str) -> bool:
    """Whether a Secret a pod names is read for masking (never one Cyclone keeps)."""
    return name not in RESERVED_SECRET_NAMES


def _decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def secret_values(secret: Mapping[str, Any] | None,
                  keys: frozenset[str] | None = None) -> list[bytes]:
    """The decoded values of a Secret (``data`` and ``stringData``), only ``keys`` if given."""
    if not secret:
        return []
    found: list[bytes] = []
    for key, value in (secret.get("data") or {}).items():
        decoded = _decode(value) if isinstance(value, str) else None
        if decoded is not None and (keys is None or key in keys):
            found.append(decoded)
    for key, value in (secret.get("stringData") or {}).items():
        if keys is None or key in keys:
            found.append(str(value).encode())
    return found


def masked_values(secret: Mapping[str, Any] | None,
                  keys: frozenset[str] | None = None) -> list[bytes | str]:
    """What masking hides of a Secret a pod reads or a run references: of an integration
    only its credentials (its type, server URL or user name stay readable in logs and
    outputs), of any other Secret every value (``keys`` only, if given).

    A Secret is an integration only when it has the integration label AND an integration
    spec under ``integration``: a labelled Secret holding anything else is masked by every
    value, since its credentials cannot be told from the rest."""
    if secret is not None and integration_spec(secret) is not None:
        return list(integration_values(secret))
    return list(secret_values(secret, keys))


def integration_values(secret: Mapping[str, Any]) -> list[str]:
    """Every credential string of an integration Secret (its spec as JSON under any key)."""
    found: list[str] = []
    for raw in secret_values(secret):
        try:
            spec = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        found.extend(integration_credential_values(spec))
    return found
