"""The record of signed deliveries a tenant received, kept in the cluster.

It is the ConfigMap `cyclone-webhook-deliveries` of the tenant's namespace, written with
optimistic concurrency, so that it survives a restart and several server replicas agree on
it: of two replicas given the same delivery at once, one records it and the other sees it.
The decisions are `cyclone.engine.core.deliveries`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cyclone.api import keys
from cyclone.engine.core.deliveries import Verdict, claim, parse_record, render_record
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, Conflict, NotFound
from cyclone.kube.protocol import Cluster

RECORD_NAME = "cyclone-webhook-deliveries"
WRITE_ATTEMPTS = 8


class RecordBusy(Conflict):
    """The record kept changing under concurrent deliveries; the provider may retry."""


async def check_delivery(cluster: Cluster, tenant: str, digest: str, delivery_id: str,
                         window: timedelta, now: datetime | None = None) -> Verdict:
    """Record a verified delivery, or tell that it was seen within `window`."""
    namespace = keys.tenant_namespace(tenant)
    for _ in range(WRITE_ATTEMPTS):
        moment = now or datetime.now(UTC)
        try:
            record = await cluster.get(kinds.CONFIG_MAP, RECORD_NAME, namespace)
        except NotFound:
            record = None
        verdict, entries = claim(parse_record((record or {}).get("data")), digest,
                                 delivery_id, moment, window)
        if entries is None:
            return verdict
        try:
            if record is None:
                await cluster.create({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": RECORD_NAME, "namespace": namespace,
                                 "labels": {keys.LABEL_TENANT: tenant}},
                    "data": render_record(entries)}, namespace=namespace)
            else:
                record["data"] = render_record(entries)
                await cluster.replace(record)
        except (AlreadyExists, Conflict):
            continue
        return verdict
    raise RecordBusy("too many deliveries at once; deliver again later")
