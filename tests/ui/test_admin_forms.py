"""The admin forms' pure logic: form → API body, stored object → form, refusals → fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cyclone.api.integration import Integration
from cyclone.api.tenant import Tenant
from cyclone.server.integration_records import redact
from cyclone.ui.pages.admin_forms import (
    FORM,
    TENANT_FIELDS,
    arguments_of,
    form_values,
    general_items,
    integration_fields,
    integration_spec,
    message_problems,
    metadata,
    parse_quota,
    secret_summary,
    spec_from_yaml,
    tenant_body,
    validation_problems,
)


def test_a_blank_credential_is_left_out_and_text_is_trimmed() -> None:
    spec = integration_spec("SCM", {"scm.type": "GitLab", "scm.server": " https://g.example ",
                                    "scm.token": "", "scm.password": "   ", "scm.user": "",
                                    "scm.registerWebhook": "false", "other": "x"})
    assert spec == {"type": "SCM", "scm": {"type": "GitLab", "server": "https://g.example",
                                           "registerWebhook": False}}


def test_a_credential_keeps_its_spaces_and_nested_fields_nest() -> None:
    spec = integration_spec("Cluster", {
        "cluster.credential.server": "https://k.example",
        "cluster.credential.bearerToken": " tok ",
        "cluster.credential.tlsClientConfig.insecure": "on",
        "cluster.isControlCluster": ""})
    assert spec == {"type": "Cluster", "cluster": {"credential": {
        "server": "https://k.example", "bearerToken": " tok ",
        "tlsClientConfig": {"insecure": True}}}}
    Integration.model_validate({"spec": spec})


def test_general_rows_keep_their_order_drop_empty_rows_and_blank_values() -> None:
    form = {"general.10.name": "C", "general.10.value": "c", "general.2.name": "A",
            "general.2.value": "", "general.3.name": "", "general.3.value": "",
            "general.x.name": "ignored"}
    assert general_items(form) == [{"name": "A"}, {"name": "C", "value": "c"}]
    assert integration_spec("General", form)["general"][0] == {"name": "A"}


def test_the_form_of_a_stored_integration_has_no_credential_value() -> None:
    stored = {"metadata": {"name": "gh", "annotations": {"cyclone.dev/alias": "GH"}},
              "spec": redact({"type": "SCM", "scm": {"type": "GitHub", "server": "s",
                                                     "token": "secret-1",
                                                     "registerWebhook": True}})}
    shown = form_values(stored)
    assert "secret-1" not in repr(shown)
    assert shown.stored_secrets == frozenset({"scm.token"})
    assert shown.values["scm.server"] == "s" and shown.values["alias"] == "GH"
    assert shown.values["scm.registerWebhook"] == "true"
    assert secret_summary(stored) == ["API token"]


def test_the_form_of_a_general_integration_lists_names_and_which_values_are_stored() -> None:
    stored = {"metadata": {"name": "g"}, "spec": redact({"type": "General", "general": [
        {"name": "A", "value": "v"}, {"name": "B"}]})}
    assert form_values(stored).general == (("A", True), ("B", False))
    assert secret_summary(stored) == ["A"]


def test_metadata_takes_the_name_alias_and_description() -> None:
    assert metadata({"name": " n ", "alias": "A", "description": ""}) == {
        "name": "n", "annotations": {"cyclone.dev/alias": "A"}}
    assert metadata({"name": "ignored"}, "kept")["name"] == "kept"


def test_a_model_refusal_lands_under_its_input() -> None:
    with pytest.raises(ValidationError) as refused:
        Integration.model_validate({"spec": {"type": "Cluster",
                                             "cluster": {"clusterName": "Bad_"}}})
    assert list(validation_problems(refused.value, integration_fields("Cluster"))) == \
        ["cluster.clusterName"]


def test_a_rule_refusal_located_under_body_lands_under_its_input() -> None:
    problems = validation_problems(
        [{"loc": ("body", "metadata", "name"), "msg": "must be a DNS label"}],
        integration_fields("SCM"))
    assert problems == {"name": "must be a DNS label"}


def test_an_api_message_naming_a_field_lands_under_it_and_others_on_the_form() -> None:
    fields = integration_fields("SCM")
    assert message_problems("spec.scm.server: a local address", fields) == \
        {"scm.server": "a local address"}
    assert message_problems("integration 'x' already exists", fields) == \
        {FORM: "integration 'x' already exists"}
    assert message_problems("spec.resourceQuota[cpu]: invalid quantity 'x'",
                            TENANT_FIELDS) == {"quota": "invalid quantity 'x'"}
    assert message_problems("invalid Stage 'a': spec.pod: required", {"spec": "spec"}) == \
        {"spec": "required"}


def test_quota_lines_parse_and_the_first_bad_one_is_named() -> None:
    assert parse_quota("cpu=1\n memory = 2Gi ,pods=3") == (
        {"cpu": "1", "memory": "2Gi", "pods": "3"}, None)
    assert parse_quota("cpu=1\nmemory")[1] == "'memory' is not name=quantity"
    assert parse_quota("") == ({}, None)


def test_the_tenant_body_keeps_only_known_pod_features() -> None:
    body = tenant_body({"name": "t", "pvc.size": "2Gi", "allowLocalAddresses": "on"},
                       ["hostPath", "rootkit"], {"cpu": "1"})
    assert body["spec"]["allowedPodFeatures"] == ["hostPath"]
    assert Tenant.model_validate(body).spec.allow_local_addresses is True


@pytest.mark.parametrize(("text", "problem"), [
    ("a: [", "not valid YAML (line 1)"), ("", "the spec is empty"),
    ("- 1", "the spec must be a mapping")])
def test_a_spec_that_is_not_a_yaml_mapping_is_one_line(text: str, problem: str) -> None:
    spec, found = spec_from_yaml(text)
    assert spec is None and found is not None and found.startswith(problem)


def test_template_arguments_are_read_with_their_defaults() -> None:
    template = {"spec": {"pod": {"inputs": {"arguments": [
        {"name": "image", "value": "alpine", "description": "Image"}, "junk"]}}}}
    assert arguments_of(template) == [{"name": "image", "value": "alpine",
                                       "description": "Image"}]
    assert arguments_of({}) == []
