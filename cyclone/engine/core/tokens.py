"""Tokens the engine hands out and the server checks, each bound to one run.

Every token is an HMAC keyed by a key derived from the engine's key for one purpose
(`purpose_key`), so a token made for one purpose never verifies for another, and signs the
run's uid, so it is worth nothing for any other run, including one deleted and created
again under the same name. A token also expires with its run: `check_run_token` refuses it
once the run is gone, being deleted, or finished.

- Delegation callback: `HMAC(k_delegation, "{run uid}/{stage}")` in hex.
- Artifact upload: `cyu.{tenant}.{HMAC(k_upload, "{run uid}")}`. The tenant is readable so
  that the server finds the run (its namespace) from the token and the route path alone.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from cyclone.api import keys
from cyclone.engine.core.phases import is_terminal

UPLOAD_TOKEN_PREFIX = "cyu"
API_PREFIX = "/apis/v1alpha1"


class Purpose(enum.StrEnum):
    DELEGATION = "delegation-callback"
    ARTIFACT_UPLOAD = "artifact-upload"


def purpose_key(engine_key: bytes, purpose: Purpose) -> bytes:
    """The key of one kind of token, derived from the engine's key."""
    return hmac.new(engine_key, f"cyclone/{purpose.value}".encode(), hashlib.sha256).digest()


def _sign(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def delegation_token(key: bytes, run_uid: str, stage: str) -> str:
    """The token of one delegation stage of one run; `key` is the delegation purpose key."""
    return _sign(key, f"{run_uid}/{stage}")


def artifact_upload_token(key: bytes, tenant: str, run_uid: str) -> str:
    """The token that uploads artifacts of one run; `key` is the upload purpose key."""
    return f"{UPLOAD_TOKEN_PREFIX}.{tenant}.{_sign(key, run_uid)}"


def is_upload_token(token: str | None) -> bool:
    return bool(token) and token.startswith(f"{UPLOAD_TOKEN_PREFIX}.")


def upload_token_tenant(token: str) -> str | None:
    """The tenant an upload token names, None when it is not shaped like one."""
    prefix, _, rest = token.partition(".")
    tenant, _, digest = rest.partition(".")
    if prefix != UPLOAD_TOKEN_PREFIX or not tenant or not digest:
        return None
    return tenant


def artifact_upload_url(base_url: str, project: str, workflow: str, run: str) -> str:
    """Where a run's artifacts are uploaded on the server at `base_url`."""
    return (f"{base_url.rstrip('/')}{API_PREFIX}/projects/{quote(project)}/workflows/"
            f"{quote(workflow)}/workflowruns/{quote(run)}/artifacts")


class Refusal(enum.StrEnum):
    """Why a run-bound token is refused; for logs only, the caller is never told which."""

    NO_RUN = "the run does not exist"
    DELETING = "the run is being deleted"
    WRONG_TOKEN = "the token was not made for this run"
    WRONG_PLACE = "the run is not in the project and workflow of the path"
    FINISHED = "the run has finished"


def run_project(run: Mapping[str, Any], workflow_project: str | None = None) -> str:
    """The run's project: its label, else (a run created without one) its workflow's."""
    labels = (run.get("metadata") or {}).get("labels") or {}
    return labels.get(keys.LABEL_PROJECT) or workflow_project or ""


def run_workflow(run: Mapping[str, Any]) -> str:
    spec_ref = ((run.get("spec") or {}).get("workflowRef") or {}).get("name")
    labels = (run.get("metadata") or {}).get("labels") or {}
    return spec_ref or labels.get(keys.LABEL_WORKFLOW) or ""


def check_run_token(run: Mapping[str, Any] | None, token: str, expected: str, *,
                    project: str | None = None, workflow: str | None = None,
                    workflow_project: str | None = None) -> Refusal | None:
    """None when `token` may act on `run`, else why not.

    `expected` is the token made for `run` (from its uid). `project` and `workflow`, when
    given, are those of the path the token was sent to; the run must belong to them
    (`workflow_project` is the project label of the run's workflow, for a run without
    one). A
    finished run refuses every token: an upload pushed by a stage's last container still
    finds the run Running, since the stage ends only when its pod does.
    """
    if run is None:
        return Refusal.NO_RUN
    meta = run.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Refusal.DELETING
    if not meta.get("uid") or not hmac.compare_digest(expected.encode(), token.encode()):
        return Refusal.WRONG_TOKEN
    if project is not None and run_project(run, workflow_project) != project:
        return Refusal.WRONG_PLACE
    if workflow is not None and run_workflow(run) != workflow:
        return Refusal.WRONG_PLACE
    if is_terminal(((run.get("status") or {}).get("overall") or {}).get("phase")):
        return Refusal.FINISHED
    return None
