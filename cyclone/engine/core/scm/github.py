"""GitHub webhook payloads (``X-GitHub-Event``): push, create, pull_request, issue_comment."""

from __future__ import annotations

from cyclone.engine.core.scm.events import (
    BRANCH_PREFIX,
    TAG_PREFIX,
    EventType,
    Provider,
    ScmEvent,
    load_json,
    strip_prefix,
)

PULL_REQUEST_ACTIONS = frozenset({"opened", "synchronize", "reopened"})


def pull_request_revision(number: int, target_branch: str) -> str:
    return f"refs/pull/{number}/head:{target_branch}"


def parse(event: str, body: bytes) -> list[ScmEvent]:
    """The events of one delivery; empty for events Cyclone does not act on."""
    data = load_json(body)
    repo = (data.get("repository") or {}).get("full_name") or ""
    if event == "push":
        ref = data.get("ref") or ""
        branch = strip_prefix(ref, BRANCH_PREFIX)
        if data.get("deleted") or branch is None:
            return []
        commit = (data.get("head_commit") or {}).get("id") or data.get("after")
        return [ScmEvent(Provider.GITHUB, EventType.PUSH, repo, ref, branch=branch,
                         commit=commit)]
    if event == "create":
        if data.get("ref_type") != "tag" or not data.get("ref"):
            return []
        tag = data["ref"]
        return [ScmEvent(Provider.GITHUB, EventType.TAG_RELEASE, repo, f"{TAG_PREFIX}{tag}",
                         tag=tag)]
    if event == "pull_request":
        if data.get("action") not in PULL_REQUEST_ACTIONS:
            return []
        pull = data.get("pull_request") or {}
        number = int(data.get("number") or pull.get("number") or 0)
        target = (pull.get("base") or {}).get("ref") or ""
        return [ScmEvent(Provider.GITHUB, EventType.PULL_REQUEST, repo,
                         pull_request_revision(number, target), branch=target,
                         commit=(pull.get("head") or {}).get("sha"), pull_request=number)]
    if event == "issue_comment":
        issue = data.get("issue") or {}
        if data.get("action") != "created" or not issue.get("pull_request"):
            return []
        number = int(issue.get("number") or 0)
        return [ScmEvent(Provider.GITHUB, EventType.PULL_REQUEST_COMMENT, repo,
                         f"refs/pull/{number}/head", pull_request=number,
                         comment=(data.get("comment") or {}).get("body") or "")]
    return []
