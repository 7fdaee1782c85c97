"""Upload tokens for the artifacts of one run, shared by the engine and the server.

The engine gives every Http push resolver of a run a token that may upload artifacts of
that run and nothing else; the server checks it. Both derive the key from the engine's
key Secret (the one delegation tokens are signed with), so no other secret is shared.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

UPLOAD_TOKEN_PREFIX = "cyu"
API_PREFIX = "/apis/v1alpha1"


def upload_key(engine_key: bytes) -> bytes:
    """The key of upload tokens, apart from the delegation tokens signed with the same key."""
    return hmac.new(engine_key, b"artifact-upload", hashlib.sha256).digest()


def artifact_upload_token(key: bytes, tenant: str, project: str, workflow: str,
                          run: str) -> str:
    """`cyu.{tenant}.{hmac}`: the tenant is readable so that an upload needs no X-Tenant;
    the HMAC covers tenant, project, workflow and run."""
    message = "/".join((tenant, project, workflow, run)).encode()
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    return f"{UPLOAD_TOKEN_PREFIX}.{tenant}.{digest}"


def artifact_upload_url(base_url: str, project: str, workflow: str, run: str) -> str:
    """Where a run's artifacts are uploaded on the server at `base_url`."""
    return (f"{base_url.rstrip('/')}{API_PREFIX}/projects/{quote(project)}/workflows/"
            f"{quote(workflow)}/workflowruns/{quote(run)}/artifacts")
