"""`engine.shards` in the chart: 1 keeps one leader and the least-privilege Lease rules;
more passes `--shards` to every replica and lets the engine keep the shard Leases; the
schema refuses what `cyclone engine --shards` refuses."""

from __future__ import annotations

import kubernetes_validate
import pytest

from .chart import RenderError, render_chart
from .test_manifests import K8S_VERSION, deployment, option, role


def lease_rules(objects: list[dict]) -> list[dict]:
    return [rule for rule in role(objects, "Role", "cyclone-engine")["rules"]
            if rule["resources"] == ["leases"]]


def test_one_shard_is_the_default_and_names_only_the_leader_lease():
    objects = render_chart()
    args = deployment(objects, "engine")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert option(args, "--shards") == "1"
    assert all("resourceNames" in rule or rule["verbs"] == ["create"]
               for rule in lease_rules(objects))


def test_shards_reach_every_replica_and_the_engine_may_keep_the_shard_leases():
    objects = render_chart({"engine": {"shards": 8, "replicas": 3}})
    engine = deployment(objects, "engine")
    assert engine["spec"]["replicas"] == 3
    args = engine["spec"]["template"]["spec"]["containers"][0]["args"]
    assert option(args, "--shards") == "8"
    unnamed = {verb for rule in lease_rules(objects) if "resourceNames" not in rule
               for verb in rule["verbs"]}
    assert unnamed == {"create", "get", "list", "update", "delete"}
    server_rules = [rule for rule in role(objects, "Role", "cyclone-server")["rules"]
                    if rule["resources"] == ["leases"]]
    assert {verb for rule in server_rules if "resourceNames" not in rule
            for verb in rule["verbs"]} == {"create"}
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("shards", [0, 257, "four"])
def test_the_schema_refuses_shards_the_engine_would(shards):
    with pytest.raises(RenderError, match=r"engine\.shards"):
        render_chart({"engine": {"shards": shards}})
