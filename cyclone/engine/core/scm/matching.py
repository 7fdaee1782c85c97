"""Which SCM triggers an event starts, what the started run carries, and its name."""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import re
from urllib.parse import quote

from cyclone.api import keys
from cyclone.engine.core.scm.events import EventType, ScmEvent

PARAM_REVISION = "SCM_REVISION"
PARAM_TAG = "TAG"
REVISION_TYPES = frozenset({"Git", "Svn"})
TAG_TYPES = frozenset({"Image"})


def webhook_url(base_url: str, namespace: str, integration: str) -> str:
    """The server route an integration's SCM events are posted to."""
    tenant = namespace.removeprefix(keys.TENANT_NAMESPACE_PREFIX)
    return (f"{base_url.rstrip('/')}/apis/v1alpha1/tenants/{quote(tenant)}/webhook"
            f"?sourceType=SCM&integration={quote(integration)}")


def _policy(scm: dict, event_type: EventType) -> dict | None:
    field = {
        EventType.PUSH: "push",
        EventType.TAG_RELEASE: "tagRelease",
        EventType.PULL_REQUEST: "pullRequest",
        EventType.PULL_REQUEST_COMMENT: "pullRequestComment",
        EventType.POST_COMMIT: "postCommit",
    }[event_type]
    policy = scm.get(field)
    return policy if isinstance(policy, dict) and policy.get("enabled") else None


def branch_allowed(branch: str | None, branches: list[str]) -> bool:
    """No filter allows every branch; entries are names or shell-style patterns."""
    if not branches:
        return True
    if branch is None:
        return False
    return any(branch == pattern or fnmatch.fnmatchcase(branch, pattern) for pattern in branches)


def comment_matches(comment: str | None, comments: list[str]) -> bool:
    """A comment matches an entry equal to it (trimmed) or a regular expression matching it
    whole. No entries: no comment triggers a run."""
    text = (comment or "").strip()
    for entry in comments:
        if text == entry.strip():
            return True
        try:
            if re.fullmatch(entry, text):
                return True
        except re.error:
            continue
    return False


def same_repo(trigger_repo: str | None, event: ScmEvent) -> bool:
    if not trigger_repo:
        return False
    wanted = trigger_repo.strip().strip("/").removesuffix(".git").lower()
    names = (event.repo, *event.extra_repos)
    return any(wanted == n.strip().strip("/").removesuffix(".git").lower() for n in names)


def trigger_matches(trigger: dict, event: ScmEvent) -> bool:
    """Whether an enabled SCM trigger of the event's repository wants this event."""
    spec = trigger.get("spec") or {}
    if spec.get("type") != "SCM" or spec.get("disabled"):
        return False
    scm = spec.get("scm") or {}
    if not same_repo(scm.get("repo"), event):
        return False
    policy = _policy(scm, event.type)
    if policy is None:
        return False
    if event.type in (EventType.PUSH, EventType.PULL_REQUEST):
        return branch_allowed(event.branch, policy.get("branches") or [])
    if event.type == EventType.PULL_REQUEST_COMMENT:
        return comment_matches(event.comment, policy.get("comments") or [])
    return True


def with_revision(resources: list[dict], resource_types: dict[str, str | None],
                  event: ScmEvent) -> list[dict]:
    """The run's ``spec.resources`` with ``SCM_REVISION`` (and ``TAG`` for tags) set.

    A Git or Svn resource gets the revision, an Image resource the tag; a resource whose
    type is unknown gets both, as Cyclone v1 did.
    """
    result = copy.deepcopy(resources)
    for resource in result:
        kind = resource_types.get(resource.get("name") or "")
        values: dict[str, str] = {}
        if kind in REVISION_TYPES or kind is None:
            values[PARAM_REVISION] = event.revision
        if event.tag and (kind in TAG_TYPES or kind is None):
            values[PARAM_TAG] = event.tag
        parameters = [p for p in resource.get("parameters") or []
                      if p.get("name") not in values]
        parameters += [{"name": name, "value": value} for name, value in values.items()]
        resource["parameters"] = parameters
    return result


def delivery_run_name(trigger: str, delivery: str, index: int = 0) -> str:
    """``{trigger}-{digest}``: the same delivery (and event in it) always names the same run."""
    digest = hashlib.sha256(f"{delivery}/{trigger}/{index}".encode()).hexdigest()[:10]
    return f"{trigger[:52].rstrip('-')}-{digest}"


def integration_of(trigger: dict) -> str:
    """The integration an SCM trigger listens to: its event-source label, else (as in
    Cyclone v1) its ``spec.scm.secret``."""
    labels = (trigger.get("metadata") or {}).get("labels") or {}
    scm = (trigger.get("spec") or {}).get("scm") or {}
    return labels.get(keys.LABEL_TRIGGER_EVENT_SOURCE) or scm.get("secret") or ""


def own_secret(trigger: dict, integration: str) -> str | None:
    """The trigger's own webhook secret; None when the integration's applies."""
    secret = ((trigger.get("spec") or {}).get("scm") or {}).get("secret")
    return secret if secret and secret != integration else None
