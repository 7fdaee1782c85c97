"""Validation of a SonarQube integration: its token is asked about at its server.

`GET {server}/api/authentication/validate` with the token as the basic user answers
`{"valid": true|false}`. A server that answers decides: an invalid token is refused (422
naming `spec.sonarQube.token`). A server that cannot be asked (unreachable, timing out,
answering something else, or on a local address the tenant may not use) does not decide:
the integration is stored and the server logs a warning saying why it was not checked, since
SonarQube is often reachable only from where stages run; the scan template checks the token
again before each scan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from cyclone.engine.outbound import Resolver, guarded_client, refused_by
from cyclone.kube import errors

log = logging.getLogger(__name__)
VALIDATE_PATH = "/api/authentication/validate"
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class TokenVerdict:
    """`valid` is None when the answer does not decide; `reason` says why."""

    valid: bool | None
    reason: str = ""


def token_verdict(status: int, body: Any) -> TokenVerdict:
    """What SonarQube's answer to the validate call says of the token."""
    if status in (401, 403):
        return TokenVerdict(False)
    if status != 200:
        return TokenVerdict(None, f"it answered HTTP {status}")
    if not isinstance(body, dict) or not isinstance(body.get("valid"), bool):
        return TokenVerdict(None, "its answer is not SonarQube's")
    return TokenVerdict(body["valid"])


async def ask_token(server: str, token: str, *, allow_local: bool,
                    resolver: Resolver | None = None) -> TokenVerdict:
    """The verdict of `server` on `token`; never raises for a server that cannot be asked."""
    url = server.rstrip("/") + VALIDATE_PATH
    try:
        async with guarded_client(allow_local=allow_local, resolver=resolver,
                                  timeout=TIMEOUT_SECONDS) as client:
            response = await client.get(url, auth=(token, ""))
    except httpx.HTTPError as exc:
        refused = refused_by(exc)
        if refused is not None:
            return TokenVerdict(None, str(refused))
        return TokenVerdict(None, f"it is unreachable ({type(exc).__name__})")
    except ValueError as exc:
        return TokenVerdict(None, f"its URL is not usable ({exc})")
    try:
        body = response.json()
    except ValueError:
        body = None
    return token_verdict(response.status_code, body)


async def check_sonarqube(spec: dict, tenant: str, *, allow_local: bool,
                          resolver: Resolver | None = None) -> None:
    """Refuse (422) a SonarQube integration without a server, or whose server says its
    token is not valid. Without a token there is nothing to check (one may be given later)."""
    source = spec.get("sonarQube") or {}
    server, token = source.get("server"), source.get("token")
    if not server:
        raise errors.Invalid("spec.sonarQube.server: required")
    if not token:
        return
    verdict = await ask_token(server, token, allow_local=allow_local, resolver=resolver)
    if verdict.valid is False:
        raise errors.Invalid(f"spec.sonarQube.token: not valid for the SonarQube server "
                             f"{server} (it answered {VALIDATE_PATH} with valid=false)")
    if verdict.valid is None:
        log.warning("tenant %s: SonarQube integration for %s stored without checking its "
                    "token: %s", tenant, server, verdict.reason)
