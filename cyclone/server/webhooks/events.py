"""SCM webhook payloads (GitHub, GitLab, Bitbucket Server) as one neutral event.

Pure functions: headers and JSON in, an `ScmEvent` (or None for events Cyclone ignores) out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    PUSH = "push"
    TAG_RELEASE = "tagRelease"
    PULL_REQUEST = "pullRequest"
    PULL_REQUEST_COMMENT = "pullRequestComment"


@dataclass(frozen=True)
class ScmEvent:
    kind: EventKind
    repo: str
    ref: str
    revision: str
    branch: str = ""
    target_branch: str = ""
    pull_request: int | None = None
    comment: str = ""
    commit: str = ""

    def as_annotation(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.kind.value, "repo": self.repo, "ref": self.ref,
                                "revision": self.revision}
        for key, value in (("branch", self.branch), ("targetBranch", self.target_branch),
                           ("pullRequest", self.pull_request), ("comment", self.comment),
                           ("commitID", self.commit)):
            if value:
                data[key] = value
        return data


class PayloadError(ValueError):
    """The payload lacks what its event type must carry."""


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _text(data: Any, *path: str) -> str:
    value = _get(data, *path)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise PayloadError(f"{'.'.join(path)} must be a value")
    return str(value)


def _require(value: str, what: str) -> str:
    if not value:
        raise PayloadError(f"the payload has no {what}")
    return value


def _pr_number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise PayloadError("the payload has no pull request number") from exc


def github_event(event: str, payload: dict) -> ScmEvent | None:
    repo = _require(_text(payload, "repository", "full_name"), "repository.full_name")
    if event == "push":
        ref = _require(_text(payload, "ref"), "ref")
        if payload.get("deleted"):
            return None
        commit = _text(payload, "after") or _text(payload, "head_commit", "id")
        if ref.startswith("refs/tags/"):
            tag = ref.removeprefix("refs/tags/")
            return ScmEvent(EventKind.TAG_RELEASE, repo, ref, tag, commit=commit)
        branch = ref.removeprefix("refs/heads/")
        return ScmEvent(EventKind.PUSH, repo, ref, commit or branch, branch=branch,
                        commit=commit)
    if event == "create" and _text(payload, "ref_type") == "tag":
        tag = _require(_text(payload, "ref"), "ref")
        return ScmEvent(EventKind.TAG_RELEASE, repo, f"refs/tags/{tag}", tag)
    if event == "pull_request":
        if _text(payload, "action") not in ("opened", "synchronize", "reopened"):
            return None
        number = _pr_number(_get(payload, "pull_request", "number") or payload.get("number"))
        base = _require(_text(payload, "pull_request", "base", "ref"), "base branch")
        ref = f"refs/pull/{number}/head"
        return ScmEvent(EventKind.PULL_REQUEST, repo, ref, f"{ref}:{base}",
                        branch=_text(payload, "pull_request", "head", "ref"),
                        target_branch=base, pull_request=number,
                        commit=_text(payload, "pull_request", "head", "sha"))
    if event == "issue_comment":
        if _text(payload, "action") != "created" or not _get(payload, "issue", "pull_request"):
            return None
        number = _pr_number(_get(payload, "issue", "number"))
        ref = f"refs/pull/{number}/head"
        return ScmEvent(EventKind.PULL_REQUEST_COMMENT, repo, ref, ref, pull_request=number,
                        comment=_text(payload, "comment", "body"))
    return None


def gitlab_event(event: str, payload: dict) -> ScmEvent | None:
    repo = _require(_text(payload, "project", "path_with_namespace"),
                    "project.path_with_namespace")
    if event in ("Push Hook", "Tag Push Hook"):
        ref = _require(_text(payload, "ref"), "ref")
        commit = _text(payload, "checkout_sha") or _text(payload, "after")
        if not commit or set(commit) == {"0"}:
            return None
        if event == "Tag Push Hook" or ref.startswith("refs/tags/"):
            tag = ref.removeprefix("refs/tags/")
            return ScmEvent(EventKind.TAG_RELEASE, repo, ref, tag, commit=commit)
        branch = ref.removeprefix("refs/heads/")
        return ScmEvent(EventKind.PUSH, repo, ref, commit, branch=branch, commit=commit)
    if event == "Merge Request Hook":
        attrs = _get(payload, "object_attributes") or {}
        if _text(attrs, "action") not in ("open", "update", "reopen"):
            return None
        number = _pr_number(_get(attrs, "iid"))
        target = _require(_text(attrs, "target_branch"), "target branch")
        ref = f"refs/merge-requests/{number}/head"
        return ScmEvent(EventKind.PULL_REQUEST, repo, ref, f"{ref}:{target}",
                        branch=_text(attrs, "source_branch"), target_branch=target,
                        pull_request=number, commit=_text(attrs, "last_commit", "id"))
    if event == "Note Hook":
        if not _get(payload, "merge_request"):
            return None
        number = _pr_number(_get(payload, "merge_request", "iid"))
        ref = f"refs/merge-requests/{number}/head"
        return ScmEvent(EventKind.PULL_REQUEST_COMMENT, repo, ref, ref, pull_request=number,
                        comment=_text(payload, "object_attributes", "note"))
    return None


def bitbucket_event(event: str, payload: dict) -> ScmEvent | None:
    project = _text(payload, "repository", "project", "key")
    slug = _text(payload, "repository", "slug")
    repo = _require(f"{project}/{slug}" if project and slug else "", "repository")
    if event == "repo:refs_changed":
        changes = payload.get("changes") or []
        if not isinstance(changes, list) or not changes or not isinstance(changes[0], dict):
            return None
        change = changes[0]
        if _text(change, "type") == "DELETE":
            return None
        ref = _require(_text(change, "ref", "id") or _text(change, "refId"), "ref")
        commit = _text(change, "toHash")
        if ref.startswith("refs/tags/"):
            return ScmEvent(EventKind.TAG_RELEASE, repo, ref, ref.removeprefix("refs/tags/"),
                            commit=commit)
        branch = ref.removeprefix("refs/heads/")
        return ScmEvent(EventKind.PUSH, repo, ref, commit or branch, branch=branch,
                        commit=commit)
    if event in ("pr:opened", "pr:from_ref_updated"):
        number = _pr_number(_get(payload, "pullRequest", "id"))
        target = _require(_text(payload, "pullRequest", "toRef", "displayId"), "target")
        ref = f"refs/pull-requests/{number}/from"
        return ScmEvent(EventKind.PULL_REQUEST, repo, ref, f"{ref}:{target}",
                        branch=_text(payload, "pullRequest", "fromRef", "displayId"),
                        target_branch=target, pull_request=number,
                        commit=_text(payload, "pullRequest", "fromRef", "latestCommit"))
    if event == "pr:comment:added":
        number = _pr_number(_get(payload, "pullRequest", "id"))
        ref = f"refs/pull-requests/{number}/from"
        return ScmEvent(EventKind.PULL_REQUEST_COMMENT, repo, ref, ref, pull_request=number,
                        comment=_text(payload, "comment", "text"))
    return None
