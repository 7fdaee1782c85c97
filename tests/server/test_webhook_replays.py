"""SCM webhooks: a signed body replayed under a new delivery id starts nothing, and a
request nothing verifies gets one answer whatever exists."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cyclone.engine.core.deliveries import parse_record
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app
from cyclone.server.webhooks.replays import RECORD_NAME

from .helpers import ADMIN_TOKEN, make_client

SECRET = "webhook-secret"
HOOK = "/tenants/devops/webhook?sourceType=SCM&integration=github"
PUSH = {"ref": "refs/heads/main", "after": "abc123", "repository": {"full_name": "org/app"}}


def signed(payload: dict, delivery: str | None, secret: str = SECRET,
           event: str = "push") -> dict:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event, "X-Hub-Signature-256": signature,
               "Content-Type": "application/json"}
    if delivery:
        headers["X-GitHub-Delivery"] = delivery
    return {"content": body, "headers": headers}


@pytest.fixture
async def scm(devops):
    response = await devops.post("/integrations", json={"metadata": {"name": "github"}, "spec": {
        "type": "SCM", "scm": {"type": "GitHub", "server": "https://github.com",
                               "token": "t", "webhookSecret": SECRET}}})
    assert response.status_code == 201, response.text
    await devops.post("/integrations", json={"metadata": {"name": "registry"}, "spec": {
        "type": "DockerRegistry", "dockerRegistry": {"server": "r.example", "user": "u",
                                                     "password": "p"}}})
    await devops.post("/projects", json={"metadata": {"name": "demo"}})
    await devops.post("/projects/demo/stages", json={"metadata": {"name": "build"}, "spec": {
        "pod": {"spec": {"containers": [{"name": "m", "image": "busybox",
                                         "command": ["true"]}]}}}})
    response = await devops.post("/projects/demo/workflows", json={
        "metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
    assert response.status_code == 201, response.text
    response = await devops.post("/projects/demo/workflows/ci/workflowtriggers", json={
        "metadata": {"name": "on-push"}, "spec": {"type": "SCM", "scm": {
            "secret": "github", "repo": "org/app", "push": {"enabled": True}}}})
    assert response.status_code == 201, response.text
    return devops


async def runs(cluster) -> list[str]:
    return sorted(r["metadata"]["name"]
                  for r in (await cluster.list(kinds.WORKFLOW_RUN, "cyclone-devops")).items)


async def test_a_replay_under_a_new_or_no_delivery_id_starts_nothing(app, scm, cluster):
    async with make_client(app) as provider:
        first = await provider.post(HOOK, **signed(PUSH, "d-1"))
        new_id = await provider.post(HOOK, **signed(PUSH, "d-2"))
        no_id = await provider.post(HOOK, **signed(PUSH, None))
    assert first.status_code == 200, first.text
    assert first.json()["duplicate"] is False and len(first.json()["workflowruns"]) == 1
    for replay in (new_id, no_id):
        assert replay.status_code == 200, replay.text
        assert replay.json()["duplicate"] is True
        assert replay.json()["workflowruns"] == []
    assert await runs(cluster) == first.json()["workflowruns"]


async def test_the_provider_retrying_one_delivery_finds_its_runs(app, scm, cluster):
    async with make_client(app) as provider:
        first = await provider.post(HOOK, **signed(PUSH, "d-1"))
        retry = await provider.post(HOOK, **signed(PUSH, "d-1"))
    assert retry.status_code == 200
    assert retry.json()["duplicate"] is False
    assert retry.json()["existing"] == first.json()["workflowruns"]
    assert len(await runs(cluster)) == 1


async def test_another_body_is_another_delivery(app, scm, cluster):
    async with make_client(app) as provider:
        await provider.post(HOOK, **signed(PUSH, "d-1"))
        other = await provider.post(HOOK, **signed({**PUSH, "after": "def456"}, "d-2"))
    assert other.json()["duplicate"] is False and len(other.json()["workflowruns"]) == 1
    assert len(await runs(cluster)) == 2


async def test_the_record_outlives_the_server_and_is_shared_by_replicas(
        app, scm, cluster, tmp_path: Path):
    async with make_client(app) as provider:
        await provider.post(HOOK, **signed(PUSH, "d-1"))
    async with EmbeddedCluster(tmp_path / "cluster.db") as own_file:
        restarted = create_app(cluster=own_file, data_dir=tmp_path / "other",
                               admin_token=ADMIN_TOKEN)
        async with restarted.router.lifespan_context(restarted), \
                make_client(restarted) as provider:
            replay = await provider.post(HOOK, **signed(PUSH, "d-9"))
    assert replay.json()["duplicate"] is True
    assert len(await runs(cluster)) == 1
    record = await cluster.get(kinds.CONFIG_MAP, RECORD_NAME, "cyclone-devops")
    assert len(record["data"]) == 1


async def test_replicas_given_one_body_at_once_start_it_once(app, scm, cluster, tmp_path):
    async with EmbeddedCluster(tmp_path / "cluster.db") as own_file:
        replica = create_app(cluster=own_file, data_dir=tmp_path / "replica",
                             admin_token=ADMIN_TOKEN)
        async with replica.router.lifespan_context(replica), make_client(app) as one, \
                make_client(replica) as two:
            answers = await asyncio.gather(*(
                client.post(HOOK, **signed(PUSH, f"d-{i}"))
                for i, client in enumerate([one, two, one, two])))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True]
    assert len(await runs(cluster)) == 1


async def until(moment: datetime) -> None:
    """Return once the wall clock has passed `moment`."""
    await asyncio.sleep(max((moment - datetime.now(UTC)).total_seconds(), 0) + 0.05)
    assert datetime.now(UTC) > moment


async def test_past_the_window_the_same_body_starts_again(cluster, tmp_path, admin, scm):
    short = create_app(cluster=cluster, data_dir=tmp_path / "short", admin_token=ADMIN_TOKEN,
                       webhook_replay_window=timedelta(seconds=1))
    async with short.router.lifespan_context(short), make_client(short) as provider:
        await provider.post(HOOK, **signed(PUSH, "d-1"))
        record = await cluster.get(kinds.CONFIG_MAP, RECORD_NAME, "cyclone-devops")
        [seen] = parse_record(record["data"]).values()
        await until(seen.expires)
        later = await provider.post(HOOK, **signed(PUSH, "d-2"))
    assert later.json()["duplicate"] is False
    assert len(await runs(cluster)) == 2


async def test_nothing_verified_answers_alike_whatever_exists(app, scm, cluster):
    async with make_client(app) as stranger:
        answers = [
            await stranger.post(HOOK, **signed(PUSH, "d-1", secret="wrong")),
            await stranger.post(HOOK.replace("devops", "nobody"), **signed(PUSH, "d-2")),
            await stranger.post(HOOK.replace("github", "gitlab"), **signed(PUSH, "d-3")),
            await stranger.post(HOOK.replace("github", "registry"), **signed(PUSH, "d-4")),
            await stranger.post(HOOK.replace("devops", "NOT_VALID"), **signed(PUSH, "d-5")),
        ]
    assert {(a.status_code, a.text) for a in answers} == {(401, answers[0].text)}, \
        [a.text for a in answers]
    assert await runs(cluster) == []
