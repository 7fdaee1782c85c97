"""The provider-neutral SCM event every webhook payload is parsed into."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Provider(StrEnum):
    GITHUB = "GitHub"
    GITLAB = "GitLab"
    BITBUCKET = "Bitbucket"
    SVN = "SVN"


class EventType(StrEnum):
    PUSH = "scm-push"
    TAG_RELEASE = "scm-tag-release"
    PULL_REQUEST = "scm-pull-request"
    PULL_REQUEST_COMMENT = "scm-pull-request-comment"
    POST_COMMIT = "scm-post-commit"


class PayloadError(ValueError):
    """A webhook body that is not the JSON its provider documents."""


@dataclass(frozen=True)
class ScmEvent:
    """What a trigger needs to know about one SCM event.

    ``revision`` is the ``SCM_REVISION`` the Git/Svn resolver checks out: a ref for pushes
    and tags, ``<pull request ref>:<target branch>`` for pull requests (the resolver
    merges the first into the second), the revision number for SVN. ``branch`` is the
    pushed branch or the pull request's target branch, the one branch filters apply to.
    """

    provider: Provider
    type: EventType
    repo: str
    revision: str
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    pull_request: int | None = None
    comment: str | None = None
    extra_repos: tuple[str, ...] = field(default_factory=tuple)

    def to_annotation(self, **more: object) -> str:
        """The JSON kept in annotation ``workflowrun.cyclone.dev/scm-event``."""
        data = {k: v for k, v in asdict(self).items() if v not in (None, ())}
        data.update({k: v for k, v in more.items() if v is not None})
        return json.dumps(data, sort_keys=True)


def load_json(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise PayloadError(f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError("the body is not a JSON object")
    return data


def strip_prefix(ref: str, prefix: str) -> str | None:
    return ref[len(prefix):] if ref.startswith(prefix) else None


BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
