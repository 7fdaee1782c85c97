from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from cyclone.api import keys
from cyclone.engine.core.scm import EventType, Provider, parse_events
from cyclone.kube import kinds

from .helpers import make_client

SECRET = "webhook-secret"
TRIGGERS = "/projects/demo/workflows/ci/workflowtriggers"


def _github(event: str, payload: dict, secret: str = SECRET) -> dict:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"content": body, "headers": {"X-GitHub-Event": event,
                                         "X-Hub-Signature-256": signature,
                                         "Content-Type": "application/json"}}


PUSH = {"ref": "refs/heads/main", "after": "abc123", "repository": {"full_name": "org/app"}}


def _pull_request(sha: str) -> dict:
    return {"action": "synchronize", "number": 7, "repository": {"full_name": "org/app"},
            "pull_request": {"number": 7, "base": {"ref": "main"},
                             "head": {"ref": "feature", "sha": sha}}}


@pytest.fixture
async def scm_setup(devops):
    await devops.post("/integrations", json={"metadata": {"name": "github"}, "spec": {
        "type": "SCM", "scm": {"type": "GitHub", "server": "https://github.com",
                               "token": "t", "webhookSecret": SECRET}}})
    await devops.post("/projects", json={"metadata": {"name": "demo"}})
    await devops.post("/projects/demo/resources", json={"metadata": {"name": "src"}, "spec": {
        "type": "Git", "parameters": [{"name": "SCM_URL", "value": "https://github.com"},
                                      {"name": "SCM_REPO", "value": "org/app"}]}})
    await devops.post("/projects/demo/stages", json={"metadata": {"name": "build"}, "spec": {
        "pod": {"spec": {"containers": [{"image": "alpine"}]}}}})
    await devops.post("/projects/demo/workflows",
                      json={"metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
    response = await devops.post(TRIGGERS, json={"metadata": {"name": "on-scm"}, "spec": {
        "type": "SCM", "scm": {"secret": "github", "repo": "org/app",
                               "push": {"enabled": True, "branches": ["main", "release-*"]},
                               "pullRequest": {"enabled": True}}}})
    assert response.status_code == 201, response.text
    return devops


def _one(provider: Provider, event: str, payload: dict):
    [parsed] = parse_events(provider, event, json.dumps(payload).encode())
    return parsed


def test_github_events_parse():
    push = _one(Provider.GITHUB, "push", PUSH)
    assert push.type == EventType.PUSH and push.branch == "main"
    assert push.revision == "refs/heads/main" and push.commit == "abc123"
    tag = _one(Provider.GITHUB, "create", {"ref": "v1", "ref_type": "tag",
                                            "repository": {"full_name": "org/app"}})
    assert tag.type == EventType.TAG_RELEASE and tag.tag == "v1"
    pr = _one(Provider.GITHUB, "pull_request", _pull_request("s1"))
    assert pr.revision == "refs/pull/7/head:main" and pr.pull_request == 7
    closed = json.dumps({**_pull_request("s"), "action": "closed"}).encode()
    assert parse_events(Provider.GITHUB, "pull_request", closed) == []


def test_gitlab_events_parse():
    push = _one(Provider.GITLAB, "Push Hook", {"ref": "refs/heads/dev", "checkout_sha": "f00",
                                                "project": {"path_with_namespace": "g/p"}})
    assert push.type == EventType.PUSH and push.repo == "g/p" and push.branch == "dev"
    mr = _one(Provider.GITLAB, "Merge Request Hook", {
        "project": {"path_with_namespace": "g/p"},
        "object_attributes": {"action": "open", "iid": 3, "target_branch": "main"}})
    assert mr.revision == "refs/merge-requests/3/head:main"


async def test_signed_push_starts_a_run_with_revision(app, scm_setup, cluster):
    async with make_client(app) as scm:
        response = await scm.post("/tenants/devops/webhook?sourceType=SCM&integration=github",
                                  **_github("push", PUSH))
    assert response.status_code == 200, response.text
    [name] = response.json()["workflowruns"]
    run = await cluster.get(kinds.WORKFLOW_RUN, name, "cyclone-devops")
    assert run["metadata"]["labels"][keys.LABEL_WORKFLOW] == "ci"
    assert run["metadata"]["annotations"][keys.ANNOTATION_WORKFLOWRUN_TRIGGER] == "scm-push"
    assert run["spec"]["resources"] == [{"name": "src", "parameters": [
        {"name": "SCM_REVISION", "value": "refs/heads/main"}]}]
    variables = {v["name"]: v["value"] for v in run["spec"]["globalVariables"]}
    assert variables["SCM_COMMIT"] == "abc123"
    trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, "on-scm", "cyclone-devops")
    assert trigger["status"]["count"] == 1


async def test_bad_signature_is_401_and_starts_nothing(app, scm_setup, cluster):
    async with make_client(app) as scm:
        response = await scm.post("/tenants/devops/webhook?integration=github",
                                  **_github("push", PUSH, secret="wrong"))
    assert response.status_code == 401
    assert (await cluster.list(kinds.WORKFLOW_RUN, "cyclone-devops")).items == []


async def test_push_to_other_branch_starts_nothing(app, scm_setup):
    async with make_client(app) as scm:
        response = await scm.post("/tenants/devops/webhook?integration=github",
                                  **_github("push", {**PUSH, "ref": "refs/heads/dev"}))
        matched = await scm.post("/tenants/devops/webhook?integration=github",
                                 **_github("push", {**PUSH, "ref": "refs/heads/release-1"}))
    assert response.json()["workflowruns"] == []
    assert len(matched.json()["workflowruns"]) == 1


async def test_new_pull_request_event_stops_previous_run(app, scm_setup, cluster):
    async with make_client(app) as scm:
        first = await scm.post("/tenants/devops/webhook?integration=github",
                               **_github("pull_request", _pull_request("s1")))
        second = await scm.post("/tenants/devops/webhook?integration=github",
                                **_github("pull_request", _pull_request("s2")))
    [old] = first.json()["workflowruns"]
    [new] = second.json()["workflowruns"]
    assert (await cluster.get(kinds.WORKFLOW_RUN, old, "cyclone-devops"))["spec"]["stopped"]
    assert not (await cluster.get(kinds.WORKFLOW_RUN, new, "cyclone-devops"))["spec"].get(
        "stopped")


async def test_webhook_secret_is_never_shown(scm_setup):
    assert SECRET not in (await scm_setup.get("/integrations/github")).text


async def test_gitlab_token_checked(app, scm_setup):
    payload = {"ref": "refs/heads/main", "checkout_sha": "f00",
               "project": {"path_with_namespace": "org/app"}}
    async with make_client(app) as scm:
        bad = await scm.post("/tenants/devops/webhook?integration=github", json=payload,
                             headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "no"})
        good = await scm.post("/tenants/devops/webhook?integration=github", json=payload,
                              headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET})
    assert bad.status_code == 401
    assert len(good.json()["workflowruns"]) == 1
