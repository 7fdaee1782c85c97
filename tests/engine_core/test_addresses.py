"""Which addresses a tenant's outbound calls may not reach."""

from __future__ import annotations

import pytest

from cyclone.engine.core.addresses import (
    LocalAddressRefused,
    allows_local_addresses,
    literal_url_problem,
    local_address_problem,
    resolved_refusal,
)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.9.9.9", "::1", "0.0.0.0", "0.1.2.3", "::", "169.254.169.254",
    "169.254.1.1", "fe80::1", "fe80::1%eth0", "fd00:ec2::254", "100.100.100.200",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "[::1]",
])
def test_local_addresses(address: str) -> None:
    assert local_address_problem(address) is not None


@pytest.mark.parametrize("address", [
    "10.0.0.5", "192.168.1.10", "172.16.0.1", "140.82.112.5", "2606:4700::1111",
    "gitlab.example.com",
])
def test_other_addresses_are_not_local(address: str) -> None:
    assert local_address_problem(address) is None


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080", "https://localhost/api", "http://LOCALHOST.", "http://a.localhost",
    "http://[::1]:9000/x", "http://169.254.169.254/latest/meta-data", "http://0.0.0.0",
])
def test_literal_local_urls(url: str) -> None:
    assert literal_url_problem(url) is not None


@pytest.mark.parametrize("url", [None, "", "https://github.com", "http://10.1.2.3:8080",
                                 "not a url"])
def test_urls_that_are_not_literally_local(url: str | None) -> None:
    assert literal_url_problem(url) is None


def test_a_name_resolving_to_loopback_among_others_is_refused() -> None:
    refused = resolved_refusal("scm.example.com", ["140.82.112.5", "127.0.0.1"])
    assert isinstance(refused, LocalAddressRefused)
    assert "scm.example.com (127.0.0.1) is a loopback address" in str(refused)
    assert "allowLocalAddresses" in str(refused)


def test_a_name_resolving_elsewhere_passes() -> None:
    assert resolved_refusal("scm.example.com", ["140.82.112.5", "10.0.0.7"]) is None


def test_the_tenant_setting_is_read_from_its_namespace() -> None:
    def namespace(info: str) -> dict:
        return {"metadata": {"annotations": {"k": info}}}

    assert allows_local_addresses(namespace('{"allowLocalAddresses": true}'), "k")
    assert not allows_local_addresses(namespace('{"allowLocalAddresses": false}'), "k")
    assert not allows_local_addresses(namespace("not json"), "k")
    assert not allows_local_addresses(None, "k")
