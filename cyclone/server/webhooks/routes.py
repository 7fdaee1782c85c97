"""`POST /tenants/{tenant}/webhook`: SCM events start the runs of matching SCM triggers.

The request is authenticated by the SCM's signature over the body, checked with the
`webhookSecret` of the SCM integration named in `?integration=`: GitHub and Bitbucket
Server `X-Hub-Signature-256`/`X-Hub-Signature` (HMAC-SHA256), GitLab `X-Gitlab-Token`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import re

from fastapi import APIRouter, Depends, Query, Request

from cyclone.api import keys
from cyclone.kube import errors, kinds
from cyclone.server.auth import server_state
from cyclone.server.integrations import read_integration_secret, spec_of_secret
from cyclone.server.objects import DNS_LABEL, ObjectBody
from cyclone.server.scopes import Scope
from cyclone.server.state import ServerState
from cyclone.server.tenants import read_tenant
from cyclone.server.webhooks.events import (
    EventKind,
    PayloadError,
    ScmEvent,
    bitbucket_event,
    github_event,
    gitlab_event,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
MAX_BODY_BYTES = 5 * 1024 * 1024
_TRIGGER_OWN_FIELDS = ("type", "parameters", "cron", "scm", "disabled", "concurrencyPolicy",
                       "startingDeadlineSeconds")
_TERMINAL = ("Succeeded", "Failed", "Cancelled")
ANNOTATION_STOP_REASON = "workflowrun.cyclone.dev/stop-reason"


def _hmac_ok(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def parse_event(headers: dict[str, str], body: bytes, secret: str) -> ScmEvent | None:
    """Verify the signature and parse the event; None for events Cyclone ignores."""
    if "x-github-event" in headers:
        if not _hmac_ok(secret, body, headers.get("x-hub-signature-256")):
            raise errors.Unauthorized("invalid or missing X-Hub-Signature-256")
        parse, event = github_event, headers["x-github-event"]
    elif "x-gitlab-event" in headers:
        if not hmac.compare_digest(headers.get("x-gitlab-token", "").encode(), secret.encode()):
            raise errors.Unauthorized("invalid or missing X-Gitlab-Token")
        parse, event = gitlab_event, headers["x-gitlab-event"]
    elif "x-event-key" in headers:
        signature = headers.get("x-hub-signature-256") or headers.get("x-hub-signature")
        if not _hmac_ok(secret, body, signature):
            raise errors.Unauthorized("invalid or missing X-Hub-Signature")
        parse, event = bitbucket_event, headers["x-event-key"]
    else:
        raise errors.BadRequest("unknown SCM: expected X-GitHub-Event, X-Gitlab-Event or "
                                "X-Event-Key")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise errors.BadRequest("the webhook body is not JSON") from exc
    if not isinstance(payload, dict):
        raise errors.BadRequest("the webhook body is not a JSON object")
    try:
        return parse(event, payload)
    except PayloadError as exc:
        raise errors.BadRequest(str(exc)) from exc


def _branch_matches(branch: str, patterns: list) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(branch, str(p)) for p in patterns)


def _comment_matches(comment: str, patterns: list) -> bool:
    text = comment.strip()
    for pattern in patterns:
        try:
            if re.fullmatch(str(pattern), text):
                return True
        except re.error:
            if str(pattern).strip() == text:
                return True
    return False


def trigger_matches(trigger: dict, integration: str, event: ScmEvent) -> bool:
    spec = trigger.get("spec") or {}
    scm = spec.get("scm") or {}
    if spec.get("type") != "SCM" or spec.get("disabled") or scm.get("secret") != integration:
        return False
    if str(scm.get("repo") or "").strip("/").lower() != event.repo.lower():
        return False
    policy = scm.get(event.kind.value) or {}
    if not policy.get("enabled"):
        return False
    if event.kind == EventKind.PUSH:
        return _branch_matches(event.branch, policy.get("branches") or [])
    if event.kind == EventKind.PULL_REQUEST:
        return _branch_matches(event.target_branch, policy.get("branches") or [])
    if event.kind == EventKind.PULL_REQUEST_COMMENT:
        return _comment_matches(event.comment, policy.get("comments") or [])
    return True


def _variables(event: ScmEvent) -> dict[str, str]:
    values = {"SCM_EVENT": event.kind.value, "SCM_REPO": event.repo, "SCM_REF": event.ref,
              "SCM_REVISION": event.revision, "SCM_COMMIT": event.commit}
    if event.pull_request is not None:
        values["SCM_PULL_REQUEST"] = str(event.pull_request)
    return {k: v for k, v in values.items() if v}


async def _git_resources(scope: Scope, repo: str) -> list[str]:
    """Names of the project's Git resources that point at `repo`."""
    listed = await scope.cluster.list(kinds.RESOURCE, scope.namespace,
                                      label_selector=f"{keys.LABEL_PROJECT}={scope.project}")
    names = []
    for resource in listed.items:
        spec = resource.get("spec") or {}
        if spec.get("type") != "Git":
            continue
        params = {p.get("name"): str(p.get("value") or "") for p in spec.get("parameters") or []
                  if isinstance(p, dict)}
        where = f"{params.get('SCM_URL', '')}/{params.get('SCM_REPO', '')}".lower()
        if repo.lower() in where:
            names.append(resource["metadata"]["name"])
    return names


async def _cancel_previous(scope: Scope, trigger: str, event: ScmEvent) -> None:
    """A new pull request event stops older unfinished runs of the same pull request."""
    listed = await scope.cluster.list(kinds.WORKFLOW_RUN, scope.namespace,
                                      label_selector=scope.selector)
    for run in listed.items:
        annotations = run["metadata"].get("annotations") or {}
        if annotations.get(keys.ANNOTATION_WORKFLOWRUN_TRIGGER) != trigger:
            continue
        try:
            previous = json.loads(annotations.get(keys.ANNOTATION_SCM_EVENT) or "{}")
        except ValueError:
            continue
        if previous.get("pullRequest") != event.pull_request or \
                previous.get("repo") != event.repo:
            continue
        phase = ((run.get("status") or {}).get("overall") or {}).get("phase")
        if phase in _TERMINAL or (run.get("spec") or {}).get("stopped"):
            continue
        try:
            await scope.cluster.patch(kinds.WORKFLOW_RUN, run["metadata"]["name"], {
                "metadata": {"annotations": {ANNOTATION_STOP_REASON: "AutoCancelPreviousBuild"}},
                "spec": {"stopped": True}}, scope.namespace)
        except errors.NotFound:
            pass


async def start_run(scope: Scope, trigger: dict, event: ScmEvent) -> dict:
    from cyclone.server.runs import create_run

    spec = {k: v for k, v in (trigger.get("spec") or {}).items()
            if k not in _TRIGGER_OWN_FIELDS}
    spec.pop("workflowRef", None)
    given = {v.get("name") for v in spec.get("globalVariables") or [] if isinstance(v, dict)}
    spec["globalVariables"] = [*(spec.get("globalVariables") or []), *(
        {"name": k, "value": v} for k, v in _variables(event).items() if k not in given)]
    resources = list(spec.get("resources") or [])
    configured = {r.get("name") for r in resources if isinstance(r, dict)}
    for name in await _git_resources(scope, event.repo):
        if name not in configured:
            resources.append({"name": name, "parameters": [
                {"name": "SCM_REVISION", "value": event.revision}]})
    spec["resources"] = resources
    body = ObjectBody.model_validate({"metadata": {"annotations": {
        keys.ANNOTATION_WORKFLOWRUN_TRIGGER: trigger["metadata"]["name"],
        keys.ANNOTATION_SCM_EVENT: json.dumps(event.as_annotation()),
    }}, "spec": spec})
    return await create_run(scope, body)


async def _count_firing(scope: Scope, trigger: dict) -> None:
    count = int(((trigger.get("status") or {}).get("count")) or 0) + 1
    try:
        await scope.cluster.patch(kinds.WORKFLOW_TRIGGER, trigger["metadata"]["name"],
                                  {"status": {"count": count}}, scope.namespace,
                                  subresource="status")
    except errors.ApiError as exc:
        log.warning("cannot count the firing of trigger %s: %s",
                    trigger["metadata"]["name"], exc)


@router.post("/tenants/{tenant}/webhook", summary="Receive an SCM webhook event")
async def receive_webhook(
    tenant: str,
    request: Request,
    sourceType: str = Query("SCM", pattern="^SCM$"),
    integration: str = Query(..., max_length=63, pattern=DNS_LABEL),
    state: ServerState = Depends(server_state),
) -> dict:
    """Start a run for every enabled SCM trigger of `integration` whose repository and
    event policy match; answers the runs started."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise errors.BadRequest("the webhook body is too large")
    await read_tenant(state.cluster, tenant)
    secret = await read_integration_secret(state.cluster, tenant, integration)
    spec = spec_of_secret(secret)
    if spec.get("type") != "SCM":
        raise errors.BadRequest(f"integration {integration!r} is not of type SCM")
    webhook_secret = (spec.get("scm") or {}).get("webhookSecret")
    if not webhook_secret:
        raise errors.Forbidden(f"integration {integration!r} has no scm.webhookSecret to "
                               "verify webhooks with")
    headers = {k.lower(): v for k, v in request.headers.items()}
    event = parse_event(headers, body, str(webhook_secret))
    if event is None:
        return {"event": None, "workflowruns": []}
    namespace = keys.tenant_namespace(tenant)
    triggers = await state.cluster.list(kinds.WORKFLOW_TRIGGER, namespace)
    started = []
    for trigger in triggers.items:
        if not trigger_matches(trigger, integration, event):
            continue
        labels = trigger["metadata"].get("labels") or {}
        project = labels.get(keys.LABEL_PROJECT)
        workflow = labels.get(keys.LABEL_WORKFLOW) or \
            ((trigger.get("spec") or {}).get("workflowRef") or {}).get("name")
        if not project or not workflow:
            continue
        scope = Scope(tenant, namespace, state.cluster, project, workflow,
                      labels={keys.LABEL_PROJECT: project, keys.LABEL_WORKFLOW: workflow})
        if event.kind == EventKind.PULL_REQUEST:
            await _cancel_previous(scope, trigger["metadata"]["name"], event)
        try:
            run = await start_run(scope, trigger, event)
        except errors.ApiError as exc:
            log.warning("trigger %s could not start a run: %s", trigger["metadata"]["name"], exc)
            continue
        await _count_firing(scope, trigger)
        started.append(run["metadata"]["name"])
    return {"event": event.as_annotation(), "workflowruns": started}
