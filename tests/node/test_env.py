"""Container environment and `$(VAR)` expansion, without a cluster."""

from __future__ import annotations

import base64

import pytest

from cyclone.kube.errors import NotFound
from cyclone.node.env import ContainerConfigError, container_env, expand, run_as

POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "x"}},
    "spec": {"nodeName": "node-a"},
    "status": {"podIP": "127.0.0.1"},
}
SECRETS = {("ns", "s"): {"data": {"user": base64.b64encode(b"ann").decode()}}}
CONFIG_MAPS = {("ns", "c"): {"data": {"level": "debug", "color": "blue"}}}


async def fetch_secret(namespace: str, name: str) -> dict:
    try:
        return SECRETS[(namespace, name)]
    except KeyError:
        raise NotFound(name) from None


async def fetch_config_map(namespace: str, name: str) -> dict:
    try:
        return CONFIG_MAPS[(namespace, name)]
    except KeyError:
        raise NotFound(name) from None


async def env_of(container: dict) -> dict[str, str]:
    return await container_env(
        POD, container, fetch_secret=fetch_secret, fetch_config_map=fetch_config_map
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-two"),
        ("$$(A)", "$(A)"),
        ("$(MISSING)", "$(MISSING)"),
        ("$A $(A", "$A $(A"),
        ("$$$(A)", "$1"),
    ],
)
def test_expand_follows_kubernetes_rules(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "two"}) == expected


async def test_env_values_refer_only_to_earlier_variables() -> None:
    env = await env_of({"env": [
        {"name": "LATER_REF", "value": "$(FIRST)"},
        {"name": "FIRST", "value": "one"},
        {"name": "SECOND", "value": "$(FIRST)-two"},
    ]})
    assert env == {"LATER_REF": "$(FIRST)", "FIRST": "one", "SECOND": "one-two"}


async def test_value_from_secret_config_map_and_fields() -> None:
    env = await env_of({"env": [
        {"name": "USER", "valueFrom": {"secretKeyRef": {"name": "s", "key": "user"}}},
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "level"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ]})
    assert env == {"USER": "ann", "LEVEL": "debug", "NS": "ns", "UID": "u-1",
                   "NODE": "node-a", "IP": "127.0.0.1", "APP": "x"}


async def test_env_from_comes_first_and_env_overrides_it() -> None:
    env = await env_of({
        "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "CM_"},
                    {"secretRef": {"name": "s"}}],
        "env": [{"name": "user", "value": "override"}],
    })
    assert env == {"CM_level": "debug", "CM_color": "blue", "user": "override"}


async def test_missing_secret_is_a_config_error_unless_optional() -> None:
    ref = {"secretKeyRef": {"name": "absent", "key": "k"}}
    with pytest.raises(ContainerConfigError, match="absent"):
        await env_of({"env": [{"name": "X", "valueFrom": ref}]})
    optional = {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}
    assert await env_of({"env": [{"name": "X", "valueFrom": optional}]}) == {}


async def test_missing_key_is_a_config_error() -> None:
    ref = {"configMapKeyRef": {"name": "c", "key": "nope"}}
    with pytest.raises(ContainerConfigError, match="nope"):
        await env_of({"env": [{"name": "X", "valueFrom": ref}]})


def test_run_as_takes_the_container_setting_over_the_pod_one() -> None:
    pod = {"spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 2000}}}
    assert run_as(pod, {}) == (1000, 2000)
    assert run_as(pod, {"securityContext": {"runAsUser": 0}}) == (0, 2000)
    assert run_as({}, {}) == (None, None)


def test_run_as_refuses_root_with_run_as_non_root_and_bad_ids() -> None:
    pod = {"spec": {"securityContext": {"runAsNonRoot": True}}}
    assert run_as(pod, {"securityContext": {"runAsUser": 5}}) == (5, None)
    with pytest.raises(ContainerConfigError, match="runAsNonRoot"):
        run_as(pod, {"securityContext": {"runAsUser": 0}})
    with pytest.raises(ContainerConfigError, match="runAsUser"):
        run_as({}, {"securityContext": {"runAsUser": -1}})
