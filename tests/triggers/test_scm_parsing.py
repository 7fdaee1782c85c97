from __future__ import annotations

import pytest

from cyclone.engine.core.scm import (
    EventType,
    PayloadError,
    Provider,
    delivery_id,
    detect_provider,
    parse_events,
)

from . import payloads as p


def one(provider: Provider, event: str, body: dict):
    events = parse_events(provider, event, p.encode(body))
    assert len(events) == 1
    return events[0]


def test_github_push_is_a_push_of_the_branch_ref():
    event = one(Provider.GITHUB, "push", p.github_push("dev"))
    assert (event.type, event.repo, event.revision, event.branch, event.commit) == (
        EventType.PUSH, "octo/app", "refs/heads/dev", "dev", p.SHA)


def test_github_branch_deletion_and_tag_push_start_nothing():
    assert parse_events(Provider.GITHUB, "push", p.encode(p.github_push(deleted=True))) == []
    tag_push = p.github_push()
    tag_push["ref"] = "refs/tags/v1"
    assert parse_events(Provider.GITHUB, "push", p.encode(tag_push)) == []


def test_github_tag_creation_is_a_tag_release():
    event = one(Provider.GITHUB, "create", p.github_create_tag("v1.2.0"))
    assert (event.type, event.revision, event.tag) == (
        EventType.TAG_RELEASE, "refs/tags/v1.2.0", "v1.2.0")


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_github_pull_request_merges_the_pr_head_into_its_base(action):
    event = one(Provider.GITHUB, "pull_request",
                p.github_pull_request(action, number=7, base="release"))
    assert event.type == EventType.PULL_REQUEST
    assert event.revision == "refs/pull/7/head:release"
    assert (event.branch, event.pull_request, event.commit) == ("release", 7, p.SHA)


def test_github_closed_pull_request_and_issue_comment_start_nothing():
    closed = p.github_pull_request("closed")
    assert parse_events(Provider.GITHUB, "pull_request", p.encode(closed)) == []
    on_issue = p.github_issue_comment(on_pr=False)
    assert parse_events(Provider.GITHUB, "issue_comment", p.encode(on_issue)) == []


def test_github_pr_comment_carries_the_comment():
    event = one(Provider.GITHUB, "issue_comment", p.github_issue_comment("/test all", 3))
    assert (event.type, event.comment, event.pull_request) == (
        EventType.PULL_REQUEST_COMMENT, "/test all", 3)


def test_gitlab_events():
    push = one(Provider.GITLAB, "Push Hook", p.gitlab_push("dev"))
    assert (push.type, push.repo, push.revision, push.branch) == (
        EventType.PUSH, "mike/diaspora", "refs/heads/dev", "dev")
    tag = one(Provider.GITLAB, "Tag Push Hook", p.gitlab_tag_push("v1.0.0"))
    assert (tag.type, tag.tag, tag.revision) == (
        EventType.TAG_RELEASE, "v1.0.0", "refs/tags/v1.0.0")
    mr = one(Provider.GITLAB, "Merge Request Hook", p.gitlab_merge_request("open", 4))
    assert (mr.type, mr.revision, mr.pull_request, mr.commit) == (
        EventType.PULL_REQUEST, "refs/merge-requests/4/head:master", 4, p.SHA)
    note = one(Provider.GITLAB, "Note Hook", p.gitlab_note("/retest", 4))
    assert (note.type, note.comment, note.pull_request) == (
        EventType.PULL_REQUEST_COMMENT, "/retest", 4)


def test_gitlab_merge_request_update_without_new_commits_starts_nothing():
    update = p.gitlab_merge_request("update")
    del update["object_attributes"]["oldrev"]
    assert parse_events(Provider.GITLAB, "Merge Request Hook", p.encode(update)) == []
    assert parse_events(Provider.GITLAB, "Merge Request Hook",
                        p.encode(p.gitlab_merge_request("update"))) != []


def test_bitbucket_server_events():
    push = one(Provider.BITBUCKET, "repo:refs_changed", p.bitbucket_refs_changed())
    assert (push.type, push.repo, push.revision, push.branch) == (
        EventType.PUSH, "PROJ/repository", "refs/heads/master", "master")
    tag = one(Provider.BITBUCKET, "repo:refs_changed",
              p.bitbucket_refs_changed("refs/tags/v2", "TAG"))
    assert (tag.type, tag.tag) == (EventType.TAG_RELEASE, "v2")
    pr = one(Provider.BITBUCKET, "pr:opened", p.bitbucket_pull_request(pr_id=5))
    assert (pr.type, pr.revision, pr.pull_request, pr.branch) == (
        EventType.PULL_REQUEST, "refs/pull-requests/5/from:master", 5, "master")
    comment = one(Provider.BITBUCKET, "pr:comment:added", p.bitbucket_pr_comment("ok"))
    assert (comment.type, comment.comment) == (EventType.PULL_REQUEST_COMMENT, "ok")


def test_svn_post_commit():
    event = one(Provider.SVN, "Post-Commit", p.svn_post_commit("42"))
    assert (event.type, event.repo, event.revision) == (
        EventType.POST_COMMIT, p.SVN_REPO_UUID, "42")


def test_malformed_bodies_are_payload_errors():
    with pytest.raises(PayloadError):
        parse_events(Provider.GITHUB, "push", b"not json")
    with pytest.raises(PayloadError):
        parse_events(Provider.GITLAB, "Merge Request Hook",
                     b'{"object_kind": "merge_request", "object_attributes": '
                     b'{"action": "open", "iid": "x"}}')


def test_provider_and_delivery_from_headers():
    assert detect_provider({"x-github-event": "push"}) == (Provider.GITHUB, "push")
    assert detect_provider({"x-gitlab-event": "Push Hook"}) == (Provider.GITLAB, "Push Hook")
    assert detect_provider({"x-event-key": "pr:opened"}) == (Provider.BITBUCKET, "pr:opened")
    assert detect_provider({"x-subversion-event": "Post-Commit"})[0] == Provider.SVN
    assert detect_provider({"content-type": "application/json"}) is None
    assert delivery_id({"x-github-delivery": "abc"}, b"{}") == "abc"
    assert delivery_id({}, b"{}") == delivery_id({}, b"{}") != delivery_id({}, b"[]")
