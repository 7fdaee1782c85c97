"""`cyclone token create|list|revoke` against a live `cyclone up`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.live_up import LiveUp, live_up
from typer.testing import CliRunner

from cyclone.cli.main import app


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    with live_up(tmp_path_factory.mktemp("up")) as up:
        for tenant in ("tokq", "toko"):
            created = invoke("tenant", "create", tenant)
            assert created.exit_code == 0, created.output
        yield up


def as_token(token: str, tenant: str, *args: str):
    return invoke("--token", token, "--tenant", tenant, *args)


def test_create_prints_only_the_token_which_then_works(instance: LiveUp) -> None:
    created = instance.run_cli("token", "create", "tokq", "--description", "ci bot")
    assert created.returncode == 0, created.stderr
    assert len(created.stdout.splitlines()) == 1
    token = created.stdout.strip()
    assert token and " " not in token
    assert created.stderr.startswith("token/") and "not shown again" in created.stderr
    listed = as_token(token, "tokq", "get", "projects")
    assert listed.exit_code == 0, listed.output


def test_list_shows_ids_and_descriptions_never_tokens(instance: LiveUp) -> None:
    token = invoke("token", "create", "tokq", "-d", "deploy key").stdout.strip()
    table = invoke("token", "list", "tokq")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split() == ["ID", "DESCRIPTION", "AGE"]
    assert any("deploy key" in line for line in table.stdout.splitlines()[1:])
    as_json = invoke("token", "list", "tokq", "-o", "json")
    items = json.loads(as_json.stdout)
    assert {"deploy key"} <= {i["description"] for i in items}
    assert all(set(i) <= {"id", "tenant", "description", "createdAt"} for i in items)
    for output in ("table", "wide", "json", "yaml", "name", "jsonpath={.items[*].id}"):
        shown = invoke("token", "list", "tokq", "-o", output)
        assert shown.exit_code == 0 and token not in shown.output
    ids = invoke("token", "list", "tokq", "-o", "jsonpath={.items[*].id}").stdout.split()
    assert sorted(ids) == sorted(i["id"] for i in items)
    own = as_token(token, "tokq", "token", "list", "tokq", "--no-headers")
    assert own.exit_code == 0 and "deploy key" in own.stdout and "ID" not in own.stdout


def test_a_tenant_token_cannot_create_tokens_or_see_another_tenants(instance) -> None:
    token = invoke("token", "create", "tokq").stdout.strip()
    refused = as_token(token, "tokq", "token", "create", "tokq")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: ") and len(refused.stderr.splitlines()) == 1
    other = as_token(token, "tokq", "token", "list", "toko")
    assert other.exit_code == 1
    assert other.stderr == "error: tenant 'toko' not found\n"


def test_revoke_ends_a_token(instance: LiveUp) -> None:
    created = instance.run_cli("token", "create", "tokq", "-d", "short-lived")
    token = created.stdout.strip()
    token_id = created.stderr.split()[0].removeprefix("token/")
    assert as_token(token, "tokq", "get", "projects").exit_code == 0
    revoked = invoke("token", "revoke", "tokq", token_id)
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout == f"token/{token_id} revoked\n"
    refused = as_token(token, "tokq", "get", "projects")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: not authorised")
    assert token_id not in invoke("token", "list", "tokq").stdout
    missing = invoke("token", "revoke", "tokq", token_id)
    assert missing.exit_code == 1
    assert missing.stderr == f"error: token {token_id!r} not found\n"
