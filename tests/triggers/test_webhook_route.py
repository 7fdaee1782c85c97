from __future__ import annotations

import json

import pytest

from cyclone.api import keys
from cyclone.engine.core.scm import Provider
from cyclone.engine.core.triggerrun import LABEL_PULL_REQUEST, LABEL_TRIGGER
from cyclone.kube import kinds

from . import payloads as p
from .support import (
    NAMESPACE,
    PROJECT,
    WORKFLOW,
    create_integration,
    create_resource,
    create_trigger,
    create_workflow,
    parameters,
    post_event,
    runs,
    scm_trigger_object,
)


@pytest.fixture
async def github(admin, cluster):
    await create_integration(admin, "gh", "GitHub")
    await create_workflow(cluster)
    await create_resource(cluster, "src", "Git")
    await create_resource(cluster, "img", "Image")


RESOURCES = [{"name": "src", "parameters": [{"name": "SCM_URL", "value": "https://x"}]},
             {"name": "img", "parameters": []}]


async def test_signed_push_starts_one_run_with_the_revision(github, cluster, anonymous):
    await create_trigger(cluster, scm_trigger_object(
        "on-push", "gh", "octo/app", push={"enabled": True}, resources=RESOURCES))
    response = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                                p.encode(p.github_push("main")))
    assert response.status_code == 200, response.text
    assert len(response.json()["workflowruns"]) == 1
    [run] = await runs(cluster)
    meta = run["metadata"]
    assert meta["labels"][keys.LABEL_PROJECT] == PROJECT
    assert meta["labels"][LABEL_TRIGGER] == "on-push"
    assert meta["annotations"][keys.ANNOTATION_WORKFLOWRUN_TRIGGER] == "scm-push"
    event = json.loads(meta["annotations"][keys.ANNOTATION_SCM_EVENT])
    assert event["type"] == "scm-push" and event["commit"] == p.SHA
    assert event["integration"] == "gh" and event["repo"] == "octo/app"
    assert event["targetURL"].endswith(
        f"/projects/{PROJECT}/workflows/{WORKFLOW}/runs/{meta['name']}")
    assert run["spec"]["workflowRef"]["name"] == WORKFLOW
    assert parameters(run, "src") == {"SCM_URL": "https://x", "SCM_REVISION": "refs/heads/main"}
    assert parameters(run, "img") == {}
    trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, "on-push", NAMESPACE)
    assert trigger["status"]["count"] == 1


@pytest.mark.parametrize("secret", [None, "wrong"])
async def test_unsigned_or_wrongly_signed_requests_start_nothing(github, cluster, anonymous,
                                                                 secret):
    await create_trigger(cluster, scm_trigger_object("on-push", "gh", "octo/app",
                                                     push={"enabled": True}))
    response = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                                p.encode(p.github_push()), secret=secret)
    assert response.status_code == 401
    assert await runs(cluster) == []


async def test_signature_over_another_body_is_rejected(github, cluster, anonymous):
    await create_trigger(cluster, scm_trigger_object("on-push", "gh", "octo/app",
                                                     push={"enabled": True}))
    from cyclone.engine.core.scm import signed_headers

    forged = signed_headers(Provider.GITHUB, p.encode(p.github_push("dev")), "s3cret")
    response = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                                p.encode(p.github_push("main")), secret=None, headers=forged)
    assert response.status_code == 401
    assert await runs(cluster) == []


async def test_redelivery_creates_nothing_new(github, cluster, anonymous):
    await create_trigger(cluster, scm_trigger_object("on-push", "gh", "octo/app",
                                                     push={"enabled": True}))
    body = p.encode(p.github_push())
    first = await post_event(anonymous, "gh", Provider.GITHUB, "push", body, delivery="d-1")
    again = await post_event(anonymous, "gh", Provider.GITHUB, "push", body, delivery="d-1")
    assert first.json()["workflowruns"] and again.json()["workflowruns"] == []
    assert again.json()["existing"] == first.json()["workflowruns"]
    assert len(await runs(cluster)) == 1
    trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, "on-push", NAMESPACE)
    assert trigger["status"]["count"] == 1
    replayed = await post_event(anonymous, "gh", Provider.GITHUB, "push", body, delivery="d-2")
    assert replayed.json()["duplicate"] is True and replayed.json()["workflowruns"] == []
    assert len(await runs(cluster)) == 1
    other = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                             p.encode(p.github_push("release-1")), delivery="d-2")
    assert other.json()["duplicate"] is False


async def test_branch_filters_and_disabled_triggers(github, cluster, anonymous):
    await create_trigger(cluster, scm_trigger_object(
        "main-only", "gh", "octo/app", push={"enabled": True, "branches": ["main"]}))
    await create_trigger(cluster, scm_trigger_object(
        "off", "gh", "octo/app", disabled=True, push={"enabled": True}))
    await create_trigger(cluster, scm_trigger_object(
        "push-off", "gh", "octo/app", push={"enabled": False}))
    dev = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                           p.encode(p.github_push("dev")), delivery="d-dev")
    assert dev.status_code == 200 and dev.json()["workflowruns"] == []
    main = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                            p.encode(p.github_push("main")), delivery="d-main")
    [created] = main.json()["workflowruns"]
    [run] = await runs(cluster)
    assert run["metadata"]["name"] == created
    assert run["metadata"]["labels"][LABEL_TRIGGER] == "main-only"


async def test_trigger_of_a_missing_workflow_creates_nothing(github, cluster, anonymous):
    await create_trigger(cluster, scm_trigger_object(
        "orphan", "gh", "octo/app", workflow="gone", push={"enabled": True}))
    response = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                                p.encode(p.github_push()))
    assert response.status_code == 200 and response.json()["workflowruns"] == []


async def test_only_triggers_whose_secret_verified_are_matched(github, cluster, anonymous):
    await create_trigger(cluster, scm_trigger_object("a", "gh", "octo/app", secret="secret-a",
                                                     push={"enabled": True}))
    await create_trigger(cluster, scm_trigger_object("b", "gh", "octo/app", secret="secret-b",
                                                     push={"enabled": True}))
    response = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                                p.encode(p.github_push()), secret="secret-a")
    assert response.status_code == 200
    [run] = await runs(cluster)
    assert run["metadata"]["labels"][LABEL_TRIGGER] == "a"


async def test_integration_secret_verifies_triggers_without_their_own(admin, cluster,
                                                                      anonymous):
    await create_integration(admin, "gh2", "GitHub", webhookSecret="shared")
    await create_workflow(cluster)
    await create_trigger(cluster, scm_trigger_object("t", "gh2", "octo/app", secret=None,
                                                     push={"enabled": True}))
    wrong = await post_event(anonymous, "gh2", Provider.GITHUB, "push",
                             p.encode(p.github_push()), secret="s3cret")
    assert wrong.status_code == 401
    right = await post_event(anonymous, "gh2", Provider.GITHUB, "push",
                             p.encode(p.github_push()), secret="shared")
    assert right.status_code == 200 and len(right.json()["workflowruns"]) == 1


async def test_unknown_integration_and_source_type(github, anonymous):
    response = await post_event(anonymous, "nope", Provider.GITHUB, "push",
                                p.encode(p.github_push()))
    assert response.status_code == 401
    assert response.json()["message"] == "the webhook signature is missing or does not verify"
    bad = await anonymous.post(f"/tenants/{keys.DEFAULT_TENANT}/webhook?sourceType=Other"
                               "&integration=gh", content=b"{}")
    assert bad.status_code == 400


async def test_tag_release_sets_revision_and_tag(github, cluster, anonymous):
    await create_trigger(cluster, scm_trigger_object(
        "release", "gh", "octo/app", tagRelease={"enabled": True}, resources=RESOURCES))
    response = await post_event(anonymous, "gh", Provider.GITHUB, "create",
                                p.encode(p.github_create_tag("v1.2.0")))
    assert len(response.json()["workflowruns"]) == 1
    [run] = await runs(cluster)
    assert parameters(run, "src")["SCM_REVISION"] == "refs/tags/v1.2.0"
    assert parameters(run, "img") == {"TAG": "v1.2.0"}
    assert run["metadata"]["annotations"][keys.ANNOTATION_WORKFLOWRUN_TRIGGER] == (
        "scm-tag-release")


async def test_pull_request_comment_starts_a_run(github, cluster, anonymous):
    await create_trigger(cluster, scm_trigger_object(
        "retest", "gh", "octo/app",
        pullRequestComment={"enabled": True, "comments": ["/retest"]}, resources=RESOURCES))
    ignored = await post_event(anonymous, "gh", Provider.GITHUB, "issue_comment",
                               p.encode(p.github_issue_comment("lgtm")), delivery="c-1")
    assert ignored.json()["workflowruns"] == []
    wanted = await post_event(anonymous, "gh", Provider.GITHUB, "issue_comment",
                              p.encode(p.github_issue_comment("/retest", 9)), delivery="c-2")
    assert len(wanted.json()["workflowruns"]) == 1
    [run] = await runs(cluster)
    assert run["metadata"]["labels"][LABEL_PULL_REQUEST] == "9"


async def _mark_running(cluster, name: str) -> None:
    run = await cluster.get(kinds.WORKFLOW_RUN, name, NAMESPACE)
    run["status"] = {
        "overall": {"phase": "Running", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        "stages": {"compile": {"status": {"phase": "Running",
                                          "lastTransitionTime": "2026-01-01T00:00:00Z"}}},
    }
    await cluster.replace_status(run)


async def test_newer_pull_request_event_cancels_older_unfinished_runs(github, cluster,
                                                                      anonymous):
    await create_trigger(cluster, scm_trigger_object(
        "pr", "gh", "octo/app", pullRequest={"enabled": True}, resources=RESOURCES))
    first = await post_event(anonymous, "gh", Provider.GITHUB, "pull_request",
                             p.encode(p.github_pull_request("opened", 2)), delivery="pr-1")
    [older] = first.json()["workflowruns"]
    other_pr = await post_event(anonymous, "gh", Provider.GITHUB, "pull_request",
                                p.encode(p.github_pull_request("opened", 3)), delivery="pr-3")
    [unrelated] = other_pr.json()["workflowruns"]
    await _mark_running(cluster, older)
    await _mark_running(cluster, unrelated)
    newer = await post_event(anonymous, "gh", Provider.GITHUB, "pull_request",
                             p.encode(p.github_pull_request("synchronize", 2, head=p.SHA2)),
                             delivery="pr-2")
    assert newer.json()["cancelled"] == [older]
    [newest] = newer.json()["workflowruns"]
    cancelled = await cluster.get(kinds.WORKFLOW_RUN, older, NAMESPACE)
    assert cancelled["spec"]["stopped"] is True
    assert cancelled["metadata"]["annotations"][keys.ANNOTATION_STOP_REASON] == \
        "AutoCancelPreviousBuild"
    assert cancelled["metadata"]["annotations"][keys.ANNOTATION_STOP_MESSAGE] == \
        f"superseded by run {newest} of pull request 2"
    assert cancelled["status"]["overall"]["phase"] == "Running", "the engine ends it"
    untouched = await cluster.get(kinds.WORKFLOW_RUN, unrelated, NAMESPACE)
    assert untouched["status"]["overall"]["phase"] == "Running"
    assert not untouched["spec"].get("stopped")
    current = await cluster.get(kinds.WORKFLOW_RUN, newest, NAMESPACE)
    assert parameters(current, "src")["SCM_REVISION"] == "refs/pull/2/head:main"
    assert not current["spec"].get("stopped")
