"""The masking rule shared by stage outputs and stored logs."""

from __future__ import annotations

import base64
import json

from cyclone.engine.core.masking import (
    MASK,
    Masker,
    integration_values,
    mask_outputs,
    pod_secret_refs,
    secret_candidates,
    secret_values,
)

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://10.0.0.1:6443
  name: prod
users:
- name: admin
  user:
    token: kube-token-0123456789
"""

PEM = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu
2hx9RQ8sKa9mV1PzWc3bE0qUj5T=
-----END PRIVATE KEY-----
"""


def test_a_value_is_masked_wherever_it_occurs() -> None:
    masker = Masker(["s3cr3t-value"])
    assert masker.mask(b"a s3cr3t-value b s3cr3t-value") == b"a *** b ***"
    assert masker.mask_text("x=s3cr3t-value") == "x=***"


def test_short_values_are_not_masked() -> None:
    assert secret_candidates("ab") == set()
    assert Masker(["ab", ""]).mask(b"abc") == b"abc"


def test_each_line_of_a_multi_line_secret_is_masked_alone() -> None:
    masker = Masker([PEM])
    lines = PEM.splitlines()
    for line in lines:
        assert masker.mask_text(f"log: {line}\n") == f"log: {MASK}\n"
    assert lines[1] not in masker.mask_text(PEM)


def test_a_token_inside_a_kubeconfig_is_masked_on_its_own() -> None:
    masker = Masker([KUBECONFIG])
    assert masker.mask_text("the token is kube-token-0123456789!") == f"the token is {MASK}!"
    assert masker.mask_text(KUBECONFIG).count("kube-token") == 0


def test_short_syntax_lines_of_a_document_are_not_masked() -> None:
    masker = Masker([KUBECONFIG])
    assert masker.mask_text("users:\n- name: admin\n") == "users:\n- name: admin\n"


def test_strings_inside_a_json_secret_are_masked() -> None:
    config = json.dumps({"auths": {"registry.example": {"auth": "dXNlcjpwYXNzd29yZA=="}}})
    assert Masker([config]).mask_text("auth=dXNlcjpwYXNzd29yZA==") == f"auth={MASK}"


def test_the_longest_candidate_wins() -> None:
    masker = Masker(["abcdef", "abcdefghij"])
    assert masker.mask(b"abcdefghij") == MASK.encode()


def test_safe_cut_moves_past_a_straddling_secret() -> None:
    masker = Masker(["0123456789"])
    data = b"xxxx0123456789yyyy"
    assert masker.safe_cut(data, 8) == 14
    assert masker.safe_cut(data, 4) == 4
    assert masker.safe_cut(data, 16) == 16


def test_outputs_values_are_masked() -> None:
    outputs = [{"key": "token", "value": "tok-123456"}, {"key": "n", "value": "3"}]
    assert mask_outputs(outputs, Masker(["tok-123456"])) == [
        {"key": "token", "value": MASK}, {"key": "n", "value": "3"}]
    assert mask_outputs(outputs, Masker([])) is outputs


def test_pod_secret_refs_cover_env_envfrom_and_volumes() -> None:
    pod = {"spec": {
        "initContainers": [{"env": [{"name": "A", "valueFrom": {"secretKeyRef": {
            "name": "one", "key": "a"}}}]}],
        "containers": [
            {"env": [{"name": "B", "valueFrom": {"secretKeyRef": {"name": "one", "key": "b"}}},
                     {"name": "C", "value": "plain"}],
             "envFrom": [{"secretRef": {"name": "two"}}, {"configMapRef": {"name": "cm"}}]}],
        "volumes": [{"name": "v", "secret": {"secretName": "three"}},
                    {"name": "p", "projected": {"sources": [{"secret": {"name": "four"}}]}}]}}
    assert pod_secret_refs(pod) == {"one": frozenset({"a", "b"}), "two": None, "three": None,
                                    "four": None}


def test_secret_values_decode_data_and_string_data_and_select_keys() -> None:
    secret = {"data": {"a": base64.b64encode(b"alpha").decode(), "bad": "%%%"},
              "stringData": {"b": "beta"}}
    assert sorted(secret_values(secret)) == [b"alpha", b"beta"]
    assert secret_values(secret, frozenset({"b"})) == [b"beta"]
    assert secret_values(None) == []


def test_integration_values_are_its_credentials_and_general_values() -> None:
    def integration(spec: dict) -> dict:
        return {"data": {"integration": base64.b64encode(json.dumps(spec).encode()).decode()}}

    scm = integration({"type": "SCM", "scm": {"server": "https://gh", "user": "bot",
                                              "token": "t0k3n", "webhookSecret": "hook"}})
    assert sorted(integration_values(scm)) == ["hook", "t0k3n"]
    general = integration({"type": "General", "general": [{"name": "K", "value": "v4lue"}]})
    assert integration_values(general) == ["v4lue"]
    legacy = integration({"type": "SCM", "scm": {"scm": {"token": "misplaced"}}})
    assert integration_values(legacy) == ["misplaced"]


def test_a_kubeconfig_object_masks_its_secrets_but_not_its_short_names() -> None:
    spec = {"type": "Cluster", "cluster": {"credential": {"kubeConfig": {
        "apiVersion": "v1", "kind": "Config", "current-context": "default",
        "users": [{"name": "default", "user": {"token": "object-kube-token-42"}}]}}}}
    secret = {"data": {"integration": base64.b64encode(json.dumps(spec).encode()).decode()}}
    masker = Masker(integration_values(secret))
    assert masker.mask_text("default Config object-kube-token-42") == f"default Config {MASK}"
