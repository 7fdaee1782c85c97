"""GitLab webhook payloads (``X-Gitlab-Event``): Push, Tag Push, Merge Request, Note."""

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

MERGE_REQUEST_ACTIONS = frozenset({"open", "reopen", "update"})
NULL_SHA = "0" * 40


def merge_request_revision(iid: int, target_branch: str) -> str:
    return f"refs/merge-requests/{iid}/head:{target_branch}"


def parse(event: str, body: bytes) -> list[ScmEvent]:
    data = load_json(body)
    repo = (data.get("project") or {}).get("path_with_namespace") or ""
    kind = data.get("object_kind") or ""
    if event == "Push Hook" or kind == "push":
        ref = data.get("ref") or ""
        branch = strip_prefix(ref, BRANCH_PREFIX)
        commit = data.get("checkout_sha") or data.get("after")
        if branch is None or not commit or commit == NULL_SHA:
            return []
        return [ScmEvent(Provider.GITLAB, EventType.PUSH, repo, ref, branch=branch,
                         commit=commit)]
    if event == "Tag Push Hook" or kind == "tag_push":
        ref = data.get("ref") or ""
        tag = strip_prefix(ref, TAG_PREFIX)
        commit = data.get("checkout_sha") or data.get("after")
        if tag is None or not commit or commit == NULL_SHA:
            return []
        return [ScmEvent(Provider.GITLAB, EventType.TAG_RELEASE, repo, ref, tag=tag,
                         commit=commit)]
    if event == "Merge Request Hook" or kind == "merge_request":
        attributes = data.get("object_attributes") or {}
        if attributes.get("action") not in MERGE_REQUEST_ACTIONS:
            return []
        if attributes.get("action") == "update" and not attributes.get("oldrev"):
            return []
        iid = int(attributes.get("iid") or 0)
        target = attributes.get("target_branch") or ""
        return [ScmEvent(Provider.GITLAB, EventType.PULL_REQUEST, repo,
                         merge_request_revision(iid, target), branch=target,
                         commit=(attributes.get("last_commit") or {}).get("id"),
                         pull_request=iid)]
    if event == "Note Hook" or kind == "note":
        attributes = data.get("object_attributes") or {}
        merge_request = data.get("merge_request") or {}
        if attributes.get("noteable_type") != "MergeRequest" or not merge_request:
            return []
        iid = int(merge_request.get("iid") or 0)
        target = merge_request.get("target_branch") or ""
        return [ScmEvent(Provider.GITLAB, EventType.PULL_REQUEST_COMMENT, repo,
                         merge_request_revision(iid, target), branch=target,
                         commit=(merge_request.get("last_commit") or {}).get("id"),
                         pull_request=iid, comment=attributes.get("note") or "")]
    return []
