"""Integration models refuse unknown fields; credential fields are derived from the models."""

from __future__ import annotations

import json

import pytest

from cyclone.api import validate_object
from cyclone.api.credentials import (
    MASK,
    credential_paths,
    credential_values,
    keep_credentials,
    mask_credentials,
)
from cyclone.api.integration import IntegrationSpec, integration_credential_values
from cyclone.api.trigger import WorkflowTrigger


def _integration(spec: dict) -> dict:
    return {"kind": "Integration", "metadata": {"name": "x"}, "spec": spec}


@pytest.mark.parametrize(("spec", "path"), [
    ({"type": "SCM", "scm": {"type": "GitHub", "privateKey": "k"}}, "spec.scm.privateKey"),
    ({"type": "SCM", "scm": {"scm": {"token": "t"}}}, "spec.scm.scm"),
    ({"type": "DockerRegistry", "dockerRegistry": {"auth": "dTpw"}}, "spec.dockerRegistry.auth"),
    ({"type": "SonarQube", "sonarQube": {"password": "p"}}, "spec.sonarQube.password"),
    ({"type": "Cluster", "cluster": {"credential": {"tlsClientConfig": {"keyData": "k"}}}},
     "spec.cluster.credential.tlsClientConfig.keyData"),
    ({"type": "Cluster", "cluster": {"credential": {"clientKey": "k"}}},
     "spec.cluster.credential.clientKey"),
    ({"type": "General", "general": [{"name": "a", "value": "v", "secret": "s"}]},
     "spec.general[0].secret"),
    ({"type": "SCM", "scm": {}, "extra": 1}, "spec.extra"),
])
def test_unknown_integration_fields_are_refused_by_path(spec: dict, path: str) -> None:
    problems = validate_object(_integration(spec))
    assert [p.path for p in problems] == [path]


def test_declared_integration_fields_validate() -> None:
    spec = {"type": "SCM", "scm": {"type": "GitLab", "server": "https://gl", "user": "u",
                                   "password": "p", "token": "t", "authType": "Token",
                                   "webhookSecret": "w", "registerWebhook": False}}
    assert validate_object(_integration(spec)) == []


def test_credential_fields_come_from_the_model_markers() -> None:
    spec = {"type": "Cluster", "cluster": {"clusterName": "c", "credential": {
        "server": "s", "user": "u", "password": "p", "bearerToken": "b",
        "tlsClientConfig": {"insecure": False, "caFile": "/f", "caData": "ca"},
        "kubeConfig": "k"}}}
    assert sorted(credential_paths(IntegrationSpec, spec)) == sorted([
        ("cluster", "credential", "password"), ("cluster", "credential", "bearerToken"),
        ("cluster", "credential", "tlsClientConfig", "caData"),
        ("cluster", "credential", "kubeConfig"),
    ])
    scm = {"type": "SCM", "scm": {"password": "p", "token": "t", "webhookSecret": "w"}}
    assert sorted(credential_paths(IntegrationSpec, scm)) == [
        ("scm", "password"), ("scm", "token"), ("scm", "webhookSecret")]


def test_mask_shows_set_credentials_as_the_mask_and_drops_unset_ones() -> None:
    spec = {"type": "General", "general": [{"name": "a", "value": "secret-a"},
                                           {"name": "b", "value": ""}, {"name": "c"}]}
    assert mask_credentials(IntegrationSpec, spec) == {"type": "General", "general": [
        {"name": "a", "value": MASK}, {"name": "b"}, {"name": "c"}]}
    assert spec["general"][0]["value"] == "secret-a"


def test_kubeconfig_object_is_masked_whole() -> None:
    spec = {"type": "Cluster", "cluster": {"credential": {"kubeConfig": {
        "users": [{"name": "u", "user": {"token": "kube-token"}}]}}}}
    assert mask_credentials(IntegrationSpec, spec)["cluster"]["credential"]["kubeConfig"] == MASK


def test_keep_takes_stored_values_for_omitted_and_masked_credentials() -> None:
    stored = {"type": "SCM", "scm": {"user": "u", "token": "tok", "password": "pw",
                                     "webhookSecret": "hook"}}
    new = {"type": "SCM", "scm": {"user": "v", "token": MASK, "password": "new-pw"}}
    assert keep_credentials(IntegrationSpec, new, stored) == {
        "type": "SCM", "scm": {"user": "v", "token": "tok", "password": "new-pw",
                               "webhookSecret": "hook"}}


def test_keep_matches_general_items_by_name_and_drops_a_mask_with_nothing_behind() -> None:
    stored = {"type": "General", "general": [{"name": "a", "value": "va"},
                                             {"name": "b", "value": "vb"}]}
    new = {"type": "General", "general": [{"name": "b", "value": MASK}, {"name": "a"},
                                          {"name": "c", "value": MASK}]}
    assert keep_credentials(IntegrationSpec, new, stored)["general"] == [
        {"name": "b", "value": "vb"}, {"name": "a", "value": "va"}, {"name": "c"}]


def test_credential_values_include_kubeconfig_leaves_and_undeclared_fields() -> None:
    spec = {"type": "Cluster", "cluster": {"clusterName": "c", "credential": {
        "server": "https://api", "kubeConfig": {"users": [{"user": {"token": "kt"}}]},
        "legacyKey": "old-secret"}}}
    values = integration_credential_values(spec)
    assert json.loads(values[0]) == {"users": [{"user": {"token": "kt"}}]}
    assert "old-secret" in values
    assert "https://api" not in values and "c" not in values


def test_trigger_webhook_secret_is_a_credential() -> None:
    trigger = {"spec": {"type": "SCM", "scm": {"secret": "hook-secret", "repo": "o/r"}}}
    assert credential_values(WorkflowTrigger, trigger, unknown=False) == ["hook-secret"]
    assert mask_credentials(WorkflowTrigger, trigger)["spec"]["scm"] == {
        "secret": MASK, "repo": "o/r"}


def test_an_empty_string_removes_a_stored_credential() -> None:
    stored = {"type": "SCM", "scm": {"token": "tok", "password": "pw"}}
    new = {"type": "SCM", "scm": {"token": "", "password": None}}
    assert keep_credentials(IntegrationSpec, new, stored) == {
        "type": "SCM", "scm": {"password": "pw"}}
