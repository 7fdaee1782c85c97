"""Masking at its edges: several values, bytes, boundaries of a cut, whose Secrets count."""

from __future__ import annotations

import base64
import json

import pytest

from cyclone.engine.core.masking import (
    MASK,
    Masker,
    integration_values,
    mask_outputs,
    pod_secret_readable,
    pod_secret_refs,
    referenced_secret_readable,
    secret_values,
)
from cyclone.engine.core.tenancy import RESERVED_SECRET_NAMES

SECRET = b"0123456789"


def test_every_value_given_is_masked_not_only_the_last():
    masker = Masker(["first-secret", "second-secret", "third-secret"])
    assert masker.mask_text("first-secret second-secret third-secret") == "*** *** ***"


def test_byte_values_are_masked_like_text():
    masker = Masker([b"bytes-secret"])
    assert masker.mask(b"<bytes-secret>") == b"<***>"
    assert masker.mask_text("<bytes-secret>") == "<***>"


def test_a_value_that_is_not_utf8_still_masks():
    masker = Masker([b"\xffbinary-secret"])
    assert masker.mask(b"x\xffbinary-secret") == b"x***"


def test_a_value_of_exactly_the_minimum_length_is_masked():
    assert Masker(["abc"]).mask(b"xabcx") == b"x***x"


def test_a_line_of_exactly_the_minimum_piece_length_is_masked_alone():
    masker = Masker(["first line of it\nABCDEFGH\n"])
    assert masker.mask_text("log ABCDEFGH") == f"log {MASK}"


def test_a_quoted_value_of_a_key_line_is_masked_without_its_quotes():
    masker = Masker(['user: bot\npassword: "hunter2-long-pass"\n'])
    assert masker.mask_text("pw is hunter2-long-pass") == f"pw is {MASK}"


def test_a_heading_line_of_a_document_is_not_masked():
    masker = Masker(["clusters:\n  token: kube-token-0123456789\n"])
    assert masker.mask_text("clusters:\n") == "clusters:\n"


def test_strings_inside_a_json_array_secret_are_masked():
    masker = Masker([json.dumps(["token-aaaaaaaa", "token-bbbbbbbb"])])
    assert masker.mask_text("a token-aaaaaaaa b token-bbbbbbbb") == f"a {MASK} b {MASK}"


def test_a_masker_without_values_leaves_text_alone():
    masker = Masker([])
    assert masker.mask_text("abc") == "abc"
    assert masker.mask(b"abc") == b"abc"
    assert masker.safe_cut(b"abc", 1) == 1


@pytest.mark.parametrize(
    ("data", "cut", "expected"),
    [
        (SECRET + b"yy", 1, 10),  # the cut right after a secret's first byte
        (SECRET + b"yy", 5, 10),  # a secret starting at the very beginning
        (b"xx" + SECRET, 11, 12),  # a secret starting as far before the cut as it can
        (b"xxxx" + SECRET, 5, 14),  # a secret ending as far after the cut as it can
        (b"xxxx" + SECRET, 14, 14),  # a cut right after a secret splits nothing
    ],
)
def test_a_cut_never_splits_a_secret(data, cut, expected):
    assert Masker([SECRET]).safe_cut(data, cut) == expected


def test_an_output_without_a_value_becomes_an_empty_value():
    assert mask_outputs([{"key": "k"}], Masker(["secret-x"])) == [{"key": "k", "value": ""}]


def test_a_secret_read_whole_stays_whole_when_a_key_of_it_is_also_read():
    pod = {"spec": {
        "initContainers": [{"envFrom": [{"secretRef": {"name": "one"}}]}],
        "containers": [{"env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "one", "key": "a"}}}]}],
    }}
    assert pod_secret_refs(pod) == {"one": None}


def test_secret_data_that_is_not_a_string_is_skipped():
    secret = {"data": {"n": 5, "a": base64.b64encode(b"alpha").decode()}}
    assert secret_values(secret) == [b"alpha"]


def test_integration_credentials_are_found_past_a_key_that_is_not_json():
    spec = {"type": "General", "general": [{"name": "K", "value": "v4lue"}]}
    secret = {"data": {"aaa": base64.b64encode(b"not json").decode(),
                       "integration": base64.b64encode(json.dumps(spec).encode()).decode()}}
    assert integration_values(secret) == ["v4lue"]


def test_a_referenced_secret_is_read_only_from_the_runs_own_tenant_namespace():
    assert referenced_secret_readable("cyclone-ta", "cyclone-ta", "deploy")
    assert not referenced_secret_readable("cyclone-ta", "cyclone-tb", "deploy")
    for reserved in RESERVED_SECRET_NAMES:
        assert not referenced_secret_readable("cyclone-ta", "cyclone-ta", reserved)


def test_a_pod_never_gets_a_secret_cyclone_keeps_read_for_masking():
    assert pod_secret_readable("deploy")
    for reserved in RESERVED_SECRET_NAMES:
        assert not pod_secret_readable(reserved)
