"""How engine replicas divide the work when the engine runs in shards (`--shards N`).

Namespaces are divided into N shards by a stable hash of their name (`shard_of`), the same
on every replica and across restarts. Shard *i* is owned through the Lease
``cyclone-engine-shard-<i>``; a replica reconciles the runs, pods, triggers and run
histories of a namespace only while it holds that namespace's shard.

Each replica also keeps a Lease of its own, ``cyclone-engine-replica-<hash of identity>``:
the live replicas are the holders of the replica Leases that have not expired, counted by
this replica's own clock as leader election does. The rule that divides the shards:

- a replica's fair share is ``ceil(N / live replicas)`` (itself included);
- a replica holding more than its share gives up the excess (its highest shards first),
  after it has stopped reconciling them;
- a replica holding less takes free shards (no holder, released, or expired) until it has
  its share, starting from a shard derived from its identity so that replicas starting
  together do not all race for shard 0.

Since every share is at least N / live replicas, every shard finds a holder. This module
is the pure part: no I/O, no clock of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

SHARD_LEASE_PREFIX = "cyclone-engine-shard-"
REPLICA_LEASE_PREFIX = "cyclone-engine-replica-"
MAX_SHARDS = 256


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def shard_of(namespace: str, shards: int) -> int:
    """The shard of `namespace` among `shards`; stable across processes and versions (a
    SHA-256 of the name, never Python's salted `hash`)."""
    if shards <= 1:
        return 0
    return _stable_hash(namespace) % shards


def namespaces_covering_shards(names: Iterable[str], shards: int) -> list[str]:
    """For each shard in order, the first of `names` that falls in it (`names` must cover
    every shard before it ends, e.g. an endless count)."""
    found: dict[int, str] = {}
    for name in names:
        found.setdefault(shard_of(name, shards), name)
        if len(found) == shards:
            break
    return [found[shard] for shard in range(shards)]


def shard_lease_name(shard: int) -> str:
    return f"{SHARD_LEASE_PREFIX}{shard}"


def shard_of_lease(name: str, shards: int) -> int | None:
    """The shard a Lease named `name` owns, or None when it is no shard Lease of `shards`."""
    if not name.startswith(SHARD_LEASE_PREFIX):
        return None
    suffix = name[len(SHARD_LEASE_PREFIX):]
    if not suffix.isdigit() or (len(suffix) > 1 and suffix.startswith("0")):
        return None
    shard = int(suffix)
    return shard if shard < shards else None


def replica_lease_name(identity: str) -> str:
    """The Lease that shows replica `identity` alive (a hash: identities need not be valid
    object names)."""
    return f"{REPLICA_LEASE_PREFIX}{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def fair_share(shards: int, replicas: int) -> int:
    """How many shards one replica holds at most: ``ceil(shards / replicas)``."""
    return -(-shards // max(1, replicas))


class LeaseObservations:
    """When this replica last saw each Lease change, by its own monotonic clock.

    A Lease has expired when its record (resourceVersion) has not changed for
    `lease_duration` seconds since this replica first saw that record, never by the times
    written in it, so clock skew between machines cannot make two holders.
    """

    def __init__(self, lease_duration: float) -> None:
        self.lease_duration = lease_duration
        self._seen: dict[str, tuple[str | None, float]] = {}

    def observe(self, name: str, version: str | None, now: float) -> None:
        seen = self._seen.get(name)
        if seen is None or seen[0] != version:
            self._seen[name] = (version, now)

    def expired(self, name: str, now: float) -> bool:
        seen = self._seen.get(name)
        return seen is None or now >= seen[1] + self.lease_duration

    def keep_only(self, names: Collection[str]) -> None:
        """Forget the Leases that are gone."""
        for name in [n for n in self._seen if n not in names]:
            del self._seen[name]


@dataclass(frozen=True)
class ShardPlan:
    """What one round of the lease loop does besides renewing: shards to give up (after
    stopping their work) and shards to try to take, in order."""

    share: int
    release: tuple[int, ...] = ()
    acquire: tuple[int, ...] = ()


def plan_shards(
    identity: str,
    shards: int,
    held: Collection[int],
    taken: Mapping[int, str],
    live_replicas: Collection[str],
) -> ShardPlan:
    """The fair-share rule (module docstring) for replica `identity`.

    `held`: the shards this replica holds; `taken`: the shards other replicas hold, by
    holder (unexpired Leases only); `live_replicas`: the identities of the unexpired
    replica Leases.
    """
    replicas = set(live_replicas) | set(taken.values()) | {identity}
    share = fair_share(shards, len(replicas))
    mine = sorted(held)
    if len(mine) > share:
        return ShardPlan(share, release=tuple(reversed(mine[share:])))
    start = _stable_hash(identity) % shards
    free = [(start + step) % shards for step in range(shards)]
    free = [shard for shard in free if shard not in held and shard not in taken]
    return ShardPlan(share, acquire=tuple(free[:share - len(mine)]))
