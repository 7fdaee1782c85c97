from __future__ import annotations

from cyclone.engine.core.scm import (
    EventType,
    Provider,
    ScmEvent,
    delivery_run_name,
    signed_headers,
    trigger_matches,
    verify,
    with_revision,
)


def scm_trigger(**scm: object) -> dict:
    return {"metadata": {"name": "t"},
            "spec": {"type": "SCM", "scm": {"repo": "octo/app", **scm}}}


PUSH_MAIN = ScmEvent(Provider.GITHUB, EventType.PUSH, "octo/app", "refs/heads/main",
                     branch="main")
PR_TO_MAIN = ScmEvent(Provider.GITHUB, EventType.PULL_REQUEST, "octo/app",
                      "refs/pull/1/head:main", branch="main", pull_request=1)
TAG = ScmEvent(Provider.GITHUB, EventType.TAG_RELEASE, "octo/app", "refs/tags/v1", tag="v1")


def test_push_needs_push_enabled():
    assert trigger_matches(scm_trigger(push={"enabled": True}), PUSH_MAIN)
    assert not trigger_matches(scm_trigger(push={"enabled": False}), PUSH_MAIN)
    assert not trigger_matches(scm_trigger(pullRequest={"enabled": True}), PUSH_MAIN)


def test_disabled_trigger_matches_nothing():
    trigger = scm_trigger(push={"enabled": True})
    trigger["spec"]["disabled"] = True
    assert not trigger_matches(trigger, PUSH_MAIN)


def test_other_repository_does_not_match():
    assert not trigger_matches(scm_trigger(repo="octo/other", push={"enabled": True}),
                               PUSH_MAIN)
    assert trigger_matches(scm_trigger(repo="Octo/App.git", push={"enabled": True}), PUSH_MAIN)


def test_branch_filters_apply_to_pushes_and_pull_request_targets():
    assert trigger_matches(scm_trigger(push={"enabled": True, "branches": ["main"]}),
                           PUSH_MAIN)
    assert not trigger_matches(scm_trigger(push={"enabled": True, "branches": ["dev"]}),
                               PUSH_MAIN)
    assert trigger_matches(scm_trigger(push={"enabled": True, "branches": ["ma*"]}), PUSH_MAIN)
    assert not trigger_matches(
        scm_trigger(pullRequest={"enabled": True, "branches": ["release-*"]}), PR_TO_MAIN)
    assert trigger_matches(
        scm_trigger(pullRequest={"enabled": True, "branches": ["main"]}), PR_TO_MAIN)


def test_tag_release_and_comments():
    assert trigger_matches(scm_trigger(tagRelease={"enabled": True}), TAG)
    assert not trigger_matches(scm_trigger(push={"enabled": True}), TAG)
    comment = ScmEvent(Provider.GITHUB, EventType.PULL_REQUEST_COMMENT, "octo/app",
                       "refs/pull/1/head", pull_request=1, comment=" /retest ")
    wants = scm_trigger(pullRequestComment={"enabled": True, "comments": ["/retest"]})
    assert trigger_matches(wants, comment)
    regex = scm_trigger(pullRequestComment={"enabled": True, "comments": [r"/test \w+"]})
    assert not trigger_matches(regex, comment)
    assert not trigger_matches(scm_trigger(pullRequestComment={"enabled": True}), comment)


def test_revision_and_tag_go_to_resources_by_type():
    resources = [
        {"name": "code", "parameters": [{"name": "SCM_REVISION", "value": "old"},
                                        {"name": "SCM_URL", "value": "u"}]},
        {"name": "image", "parameters": []},
        {"name": "unknown"},
    ]
    types = {"code": "Git", "image": "Image", "unknown": None}
    result = with_revision(resources, types, TAG)
    by_name = {r["name"]: {p["name"]: p["value"] for p in r["parameters"]} for r in result}
    assert by_name["code"] == {"SCM_URL": "u", "SCM_REVISION": "refs/tags/v1"}
    assert by_name["image"] == {"TAG": "v1"}
    assert by_name["unknown"] == {"SCM_REVISION": "refs/tags/v1", "TAG": "v1"}
    assert resources[0]["parameters"][0]["value"] == "old"


def test_run_name_follows_the_delivery():
    name = delivery_run_name("t", "delivery-1")
    assert name == delivery_run_name("t", "delivery-1")
    assert name != delivery_run_name("t", "delivery-2")
    assert name != delivery_run_name("t", "delivery-1", 1)
    assert name != delivery_run_name("u", "delivery-1")
    assert len(delivery_run_name("x" * 80, "d")) <= 63


def test_signatures_verify_only_with_the_right_secret():
    body = b'{"a": 1}'
    for provider in (Provider.GITHUB, Provider.GITLAB, Provider.BITBUCKET):
        headers = {k.lower(): v for k, v in signed_headers(provider, body, "s3cret").items()}
        assert verify(provider, headers, body, "s3cret")
        assert not verify(provider, headers, body, "other")
        assert not verify(provider, {}, body, "s3cret")
        assert not verify(provider, headers, body, "")
    github = {k.lower(): v for k, v in signed_headers(Provider.GITHUB, body, "s").items()}
    assert not verify(Provider.GITHUB, github, b'{"a": 2}', "s")


def test_integration_of_a_trigger_and_its_own_secret():
    from cyclone.api import keys
    from cyclone.engine.core.scm.matching import integration_of, own_secret

    labelled = scm_trigger(secret="hmac")
    labelled["metadata"]["labels"] = {keys.LABEL_TRIGGER_EVENT_SOURCE: "gh"}
    assert integration_of(labelled) == "gh"
    assert own_secret(labelled, "gh") == "hmac"
    classic = scm_trigger(secret="gh")
    assert integration_of(classic) == "gh"
    assert own_secret(classic, "gh") is None
    assert integration_of(scm_trigger()) == ""
