"""Browser sessions: the bearer token sealed in an HttpOnly cookie, and the CSRF token bound
to it.

The cookie holds the token the user signed in with, encrypted and authenticated (Fernet)
under a key derived from the admin token, so every server replica reads it, the server keeps
no session state, and revoking a token ends its sessions on the next request. The CSRF token
lives inside the sealed cookie and is echoed by every form (`csrf` field) or htmx request
(`X-CSRF-Token` header).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken

SESSION_COOKIE = "cyclone_session"
LOGIN_CSRF_COOKIE = "cyclone_login_csrf"
TENANT_COOKIE = "cyclone_tenant"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600
SIGN_IN_LINK_SECONDS = 24 * 3600


@dataclass(frozen=True)
class SealedSession:
    token: str
    csrf: str


class SessionSealer:
    """Seals and opens session cookies; the key is derived from the admin token."""

    def __init__(self, admin_token: str, max_age: int = SESSION_SECONDS,
                 now: Callable[[], float] = time.time) -> None:
        digest = hashlib.sha256(b"cyclone-ui-session\0" + admin_token.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self.max_age = max_age
        self.now = now
        """The clock a cookie's age is measured by (seconds since the epoch)."""

    def seal(self, token: str) -> tuple[str, SealedSession]:
        session = SealedSession(token=token, csrf=secrets.token_urlsafe(24))
        payload = json.dumps({"t": session.token, "c": session.csrf}).encode()
        return self._fernet.encrypt_at_time(payload, int(self.now())).decode(), session

    def open(self, cookie: str | None) -> SealedSession | None:
        """The session in `cookie`, or None when it is missing, forged or expired."""
        if not cookie:
            return None
        try:
            data = json.loads(self._fernet.decrypt_at_time(cookie.encode(), self.max_age,
                                                           int(self.now())))
        except (InvalidToken, ValueError, TypeError):
            return None
        if not isinstance(data, dict):
            return None
        token, csrf = data.get("t"), data.get("c")
        if not isinstance(token, str) or not isinstance(csrf, str) or not token or not csrf:
            return None
        return SealedSession(token=token, csrf=csrf)


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


@dataclass
class SignInLinks:
    """One-time sign-in codes (kept in this process only): `cyclone up` prints one for its
    admin at start; the first visit signs in and spends it."""

    lifetime: int = SIGN_IN_LINK_SECONDS
    _codes: dict[str, tuple[str, float]] = field(default_factory=dict)

    def issue(self, token: str) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = (token, time.monotonic() + self.lifetime)
        return code

    def redeem(self, code: str) -> str | None:
        """The token behind `code`, once; None when unknown, spent or expired."""
        entry = self._codes.pop(code, None)
        if entry is None or time.monotonic() > entry[1]:
            return None
        return entry[0]
