"""Bitbucket Server webhook payloads (``X-Event-Key``): repo:refs_changed, pr:* events."""

from __future__ import annotations

from cyclone.engine.core.scm.events import EventType, Provider, ScmEvent, load_json

PULL_REQUEST_KEYS = frozenset({"pr:opened", "pr:from_ref_updated"})
COMMENT_KEYS = frozenset({"pr:comment:added"})


def pull_request_revision(pr_id: int, target_branch: str) -> str:
    return f"refs/pull-requests/{pr_id}/from:{target_branch}"


def repo_name(repository: dict) -> str:
    """``PROJECT/slug``, the way Bitbucket Server names a repository."""
    project = (repository.get("project") or {}).get("key") or ""
    slug = repository.get("slug") or ""
    return f"{project}/{slug}" if project else slug


def parse(event_key: str, body: bytes) -> list[ScmEvent]:
    data = load_json(body)
    if event_key == "repo:refs_changed":
        repo = repo_name(data.get("repository") or {})
        events = []
        for change in data.get("changes") or []:
            ref = change.get("ref") or {}
            ref_id = ref.get("id") or change.get("refId") or ""
            if change.get("type") == "DELETE" or not ref_id:
                continue
            display = ref.get("displayId") or ref_id.rsplit("/", 1)[-1]
            if ref.get("type") == "TAG" or ref_id.startswith("refs/tags/"):
                events.append(ScmEvent(Provider.BITBUCKET, EventType.TAG_RELEASE, repo, ref_id,
                                       tag=display, commit=change.get("toHash")))
            else:
                events.append(ScmEvent(Provider.BITBUCKET, EventType.PUSH, repo, ref_id,
                                       branch=display, commit=change.get("toHash")))
        return events
    if event_key in PULL_REQUEST_KEYS or event_key in COMMENT_KEYS:
        pull = data.get("pullRequest") or {}
        to_ref = pull.get("toRef") or {}
        from_ref = pull.get("fromRef") or {}
        repo = repo_name(to_ref.get("repository") or {})
        pr_id = int(pull.get("id") or 0)
        target = to_ref.get("displayId") or ""
        common = {
            "branch": target,
            "commit": from_ref.get("latestCommit"),
            "pull_request": pr_id,
        }
        revision = pull_request_revision(pr_id, target)
        if event_key in COMMENT_KEYS:
            text = (data.get("comment") or {}).get("text") or ""
            return [ScmEvent(Provider.BITBUCKET, EventType.PULL_REQUEST_COMMENT, repo, revision,
                             comment=text, **common)]
        return [ScmEvent(Provider.BITBUCKET, EventType.PULL_REQUEST, repo, revision, **common)]
    return []
