"""GitLab, Bitbucket Server and SVN deliveries through the webhook route."""

from __future__ import annotations

import pytest

from cyclone.engine.core.scm import Provider
from cyclone.engine.core.triggerrun import LABEL_PULL_REQUEST

from . import payloads as p
from .support import (
    create_integration,
    create_resource,
    create_trigger,
    create_workflow,
    parameters,
    post_event,
    runs,
    scm_trigger_object,
)

RESOURCES = [{"name": "src"}, {"name": "img"}]


@pytest.fixture
async def setup(cluster):
    await create_workflow(cluster)
    await create_resource(cluster, "src", "Git")
    await create_resource(cluster, "img", "Image")


ALL_EVENTS = {"push": {"enabled": True}, "tagRelease": {"enabled": True},
              "pullRequest": {"enabled": True},
              "pullRequestComment": {"enabled": True, "comments": ["/retest"]}}


@pytest.mark.parametrize("event, body, revision, trigger_kind", [
    ("Push Hook", p.gitlab_push("master"), "refs/heads/master", "scm-push"),
    ("Tag Push Hook", p.gitlab_tag_push("v1.0.0"), "refs/tags/v1.0.0", "scm-tag-release"),
    ("Merge Request Hook", p.gitlab_merge_request("open", 4),
     "refs/merge-requests/4/head:master", "scm-pull-request"),
    ("Note Hook", p.gitlab_note("/retest", 4), "refs/merge-requests/4/head:master",
     "scm-pull-request-comment"),
])
async def test_gitlab_events_with_the_right_token(admin, cluster, anonymous, setup, event,
                                                  body, revision, trigger_kind):
    await create_integration(admin, "gl", "GitLab", "http://gitlab.example")
    await create_trigger(cluster, scm_trigger_object("gl-t", "gl", "mike/diaspora",
                                                     resources=RESOURCES, **ALL_EVENTS))
    wrong = await post_event(anonymous, "gl", Provider.GITLAB, event, p.encode(body),
                             secret="nope")
    assert wrong.status_code == 401 and await runs(cluster) == []
    response = await post_event(anonymous, "gl", Provider.GITLAB, event, p.encode(body))
    assert response.status_code == 200, response.text
    [run] = await runs(cluster)
    assert parameters(run, "src")["SCM_REVISION"] == revision
    assert run["metadata"]["annotations"]["workflowrun.cyclone.dev/trigger"] == trigger_kind


@pytest.mark.parametrize("event, body, revision", [
    ("repo:refs_changed", p.bitbucket_refs_changed(), "refs/heads/master"),
    ("pr:opened", p.bitbucket_pull_request(pr_id=6), "refs/pull-requests/6/from:master"),
    ("pr:from_ref_updated", p.bitbucket_pull_request("pr:from_ref_updated", 6),
     "refs/pull-requests/6/from:master"),
    ("pr:comment:added", p.bitbucket_pr_comment("/retest"), "refs/pull-requests/1/from:master"),
])
async def test_bitbucket_server_events_signed_with_x_hub_signature(admin, cluster, anonymous,
                                                                   setup, event, body,
                                                                   revision):
    await create_integration(admin, "bb", "Bitbucket", "http://bitbucket.example")
    await create_trigger(cluster, scm_trigger_object("bb-t", "bb", "PROJ/repository",
                                                     resources=RESOURCES, **ALL_EVENTS))
    unsigned = await post_event(anonymous, "bb", Provider.BITBUCKET, event, p.encode(body),
                                secret=None)
    assert unsigned.status_code == 401
    response = await post_event(anonymous, "bb", Provider.BITBUCKET, event, p.encode(body))
    assert response.status_code == 200, response.text
    [run] = await runs(cluster)
    assert parameters(run, "src")["SCM_REVISION"] == revision
    if event.startswith("pr:"):
        assert LABEL_PULL_REQUEST in run["metadata"]["labels"]


async def test_svn_post_commit(admin, cluster, anonymous, setup):
    await create_integration(admin, "svn", "SVN", "http://svn.example")
    await create_trigger(cluster, scm_trigger_object(
        "svn-t", "svn", p.SVN_REPO_UUID, resources=[{"name": "src"}],
        postCommit={"enabled": True}))
    response = await post_event(anonymous, "svn", Provider.SVN, "Post-Commit",
                                p.encode(p.svn_post_commit("42")), delivery=None)
    assert response.status_code == 200, response.text
    [run] = await runs(cluster)
    assert parameters(run, "src")["SCM_REVISION"] == "42"
    again = await post_event(anonymous, "svn", Provider.SVN, "Post-Commit",
                             p.encode(p.svn_post_commit("42")), delivery=None)
    assert again.json()["workflowruns"] == [] and len(await runs(cluster)) == 1
