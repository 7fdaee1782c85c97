"""Of an integration Secret only the credentials are masked; any other Secret wholly."""

from __future__ import annotations

import base64
import json

from cyclone.engine.core.masking import Masker, masked_values

SONAR = {"type": "SonarQube", "sonarQube": {"server": "https://sonar.example.com:9000",
                                            "token": "squ_0123456789abcdef"}}
LINE = "the token squ_0123456789abcdef is not valid for SonarQube at https://sonar.example.com:9000"


def secret(spec: dict, labels: dict | None = None) -> dict:
    return {"metadata": {"name": "sonar", "labels": labels or {}},
            "data": {"integration": base64.b64encode(json.dumps(spec).encode()).decode()}}


def test_an_integrations_type_and_server_stay_readable_and_its_token_is_masked():
    masker = Masker(masked_values(secret(SONAR, {"integration.cyclone.dev/type": "SonarQube"})))
    assert masker.mask_text(LINE) == (
        "the token *** is not valid for SonarQube at https://sonar.example.com:9000")


def test_a_secret_that_is_no_integration_is_masked_whole():
    masker = Masker(masked_values(secret(SONAR)))
    assert masker.mask_text(LINE) == "the token *** is not valid for *** at ***"


def test_only_the_keys_a_pod_reads_of_a_plain_secret_are_masked():
    plain = {"metadata": {}, "data": {
        "a": base64.b64encode(b"value-of-a").decode(),
        "b": base64.b64encode(b"value-of-b").decode()}}
    assert masked_values(plain, frozenset({"a"})) == [b"value-of-a"]


def test_a_labelled_secret_holding_no_integration_spec_is_masked_by_every_value():
    labelled = {"metadata": {"labels": {"integration.cyclone.dev/type": "SCM"}}, "data": {
        "token": base64.b64encode(b"ghp_supersecretvalue123").decode(),
        "integration": base64.b64encode(b"not json ghp_otherSecret456").decode()}}
    masker = Masker(masked_values(labelled))
    assert masker.mask_text("token=ghp_supersecretvalue123 and not json ghp_otherSecret456") \
        == "token=*** and ***"
