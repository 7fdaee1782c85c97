"""Secrets a run's values refer to (``${secrets.<ns>:<secret>/...}``), read ahead of
rendering so the pure renderer gets a plain lookup.

Only Secrets the run's tenant may read are ever read: those of the run's own namespace
that Cyclone does not keep for itself (`core.tenancy.secret_allowed`). Any other
reference stays unresolved, and rendering it fails the stage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from cyclone.engine.controllers.versioned import PerVersion
from cyclone.engine.core.tenancy import TenantPolicy, secret_allowed, tenant_of
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.protocol import Cluster

_SECRET_REF = re.compile(r"\$\{secrets\.([^:{}]+):([^/{}]+)")


def secret_references(*objects: object) -> set[tuple[str, str]]:
    text = json.dumps(objects, default=str)
    return {(m.group(1), m.group(2)) for m in _SECRET_REF.finditer(text)}


_stored_references = PerVersion(lambda obj: frozenset(secret_references(obj)), limit=10_000)
"""`secret_references` of one object from the cluster, remembered per stored version."""


async def prefetch_secrets(
    control: Cluster, run: dict, workflow: dict, stage_objects: Iterable[dict | None]
):
    """A lookup over every Secret the run, its workflow or ``stage_objects`` (the Stage
    objects of the stages whose pods are about to be built) refer to that the run's tenant
    may read. A pod renders the run's and workflow's values and its own Stage only, so
    the stages not being started are not read: the cost is that of the stages started,
    not of the run."""
    namespace = run["metadata"]["namespace"]
    policy = TenantPolicy(tenant_of(namespace))
    references = secret_references(run.get("spec")) | _stored_references(workflow)
    for stage in stage_objects:
        if stage is not None:
            references |= _stored_references(stage)
    found: dict[tuple[str, str], dict | None] = {}
    for secret_namespace, name in references:
        if not secret_allowed(policy, secret_namespace, name):
            continue
        try:
            found[(secret_namespace, name)] = await control.get(
                kinds.SECRET, name, secret_namespace)
        except NotFound:
            found[(secret_namespace, name)] = None

    def lookup(secret_namespace: str, name: str) -> dict | None:
        return found.get((secret_namespace, name))

    return lookup
