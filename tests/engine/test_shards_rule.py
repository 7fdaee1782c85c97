"""The pure rule of sharding: the shard of a namespace, the fair share, which Leases a
replica gives up and which it tries to take."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from cyclone.components import ComponentError, ElectionOptions, EngineOptions, check_shardable
from cyclone.engine.config import EngineConfig
from cyclone.engine.sharding import (
    LeaseObservations,
    fair_share,
    namespaces_covering_shards,
    plan_shards,
    replica_lease_name,
    shard_lease_name,
    shard_of,
    shard_of_lease,
)


def test_namespaces_covering_shards_gives_the_first_name_of_each_shard():
    names = [f"cyclone-t{i}" for i in range(200)]
    covering = namespaces_covering_shards(iter(names), 4)
    assert [shard_of(name, 4) for name in covering] == [0, 1, 2, 3]
    for name in covering:
        earlier = names[:names.index(name)]
        assert all(shard_of(other, 4) != shard_of(name, 4) for other in earlier)


def test_shard_of_is_the_same_in_another_process():
    names = [f"cyclone-tenant-{i}" for i in range(20)]
    here = [shard_of(name, 7) for name in names]
    script = ("from cyclone.engine.sharding import shard_of; "
              f"print([shard_of(n, 7) for n in {names!r}])")
    there = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "12345",
                                "PYTHONPATH": str(Path(__file__).parents[2])})
    assert there.stdout.strip() == str(here)


def test_shards_spread_namespaces_and_one_shard_holds_all():
    counts = [0] * 4
    for index in range(400):
        counts[shard_of(f"cyclone-t{index}", 4)] += 1
    assert all(60 <= count <= 140 for count in counts), counts
    assert {shard_of(f"ns{index}", 1) for index in range(50)} == {0}


@pytest.mark.parametrize(("shards", "replicas", "share"),
                         [(4, 1, 4), (4, 2, 2), (4, 3, 2), (4, 4, 1), (4, 9, 1), (1, 3, 1),
                          (5, 2, 3), (4, 0, 4)])
def test_fair_share_is_the_ceiling(shards, replicas, share):
    assert fair_share(shards, replicas) == share


def test_lease_names_round_trip():
    assert shard_of_lease(shard_lease_name(3), 4) == 3
    assert shard_of_lease(shard_lease_name(4), 4) is None
    assert shard_of_lease("cyclone-engine-shard-03", 4) is None
    assert shard_of_lease("cyclone-engine", 4) is None
    assert replica_lease_name("a_1") != replica_lease_name("a_2")
    assert len(replica_lease_name("x" * 300)) < 64


def test_a_lone_replica_takes_every_free_shard():
    plan = plan_shards("a", 4, held=(), taken={}, live_replicas=())
    assert plan.share == 4 and sorted(plan.acquire) == [0, 1, 2, 3] and not plan.release


def test_a_replica_over_its_share_releases_its_highest_shards():
    plan = plan_shards("a", 4, held={0, 1, 2, 3}, taken={}, live_replicas={"b"})
    assert plan.share == 2 and plan.release == (3, 2) and not plan.acquire


def test_a_new_replica_takes_only_free_shards_up_to_its_share():
    plan = plan_shards("b", 4, held=(), taken={0: "a", 1: "a"}, live_replicas={"a"})
    assert sorted(plan.acquire) == [2, 3]
    plan = plan_shards("c", 4, held=(), taken={0: "a", 1: "a", 2: "b"},
                       live_replicas={"a", "b"})
    assert plan.share == 2 and plan.acquire == (3,)


def test_holders_of_shards_count_as_live_even_without_their_replica_lease():
    plan = plan_shards("b", 4, held=(), taken={0: "a"}, live_replicas=())
    assert plan.share == 2 and len(plan.acquire) == 2 and 0 not in plan.acquire


def test_replicas_following_the_rule_hold_every_shard_exactly_once():
    rng = random.Random(7)
    for _ in range(200):
        shards = rng.randint(1, 12)
        replicas = [f"r{i}" for i in range(rng.randint(1, 5))]
        holder: dict[int, str] = {}
        for _round in range(6):
            for me in rng.sample(replicas, len(replicas)):
                held = {s for s, h in holder.items() if h == me}
                taken = {s: h for s, h in holder.items() if h != me}
                plan = plan_shards(me, shards, held, taken, replicas)
                for shard in plan.release:
                    del holder[shard]
                for shard in plan.acquire:
                    assert shard not in holder
                    holder[shard] = me
        assert sorted(holder) == list(range(shards))
        share = fair_share(shards, len(replicas))
        for me in replicas:
            assert sum(1 for h in holder.values() if h == me) <= share


def test_a_lease_expires_only_after_it_stayed_unchanged_for_its_duration():
    seen = LeaseObservations(lease_duration=10)
    seen.observe("l", "1", now=100)
    assert not seen.expired("l", now=109)
    seen.observe("l", "1", now=105)
    assert seen.expired("l", now=110)
    seen.observe("l", "2", now=110)
    assert not seen.expired("l", now=119)
    assert seen.expired("unseen", now=0)
    seen.keep_only(())
    assert seen.expired("l", now=111)


@pytest.mark.parametrize(("options", "config", "message"), [
    ({"election": ElectionOptions(enabled=False)}, {}, "--no-leader-elect"),
    ({}, {"overall": {"max_running": 3}}, "overall parallelism limit"),
    ({"shards": 1000}, {}, "at most 256"),
])
def test_what_sharding_cannot_keep_is_refused_at_start(options, config, message):
    engine_options = EngineOptions(**{"shards": 4, **options})
    with pytest.raises(ComponentError, match=message):
        check_shardable(engine_options, EngineConfig.model_validate(config))


def test_per_workflow_limits_are_kept_with_shards():
    check_shardable(EngineOptions(shards=4),
                    EngineConfig.model_validate({"per_workflow": {"max_running": 1}}))
