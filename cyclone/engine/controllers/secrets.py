"""Secrets a run's values refer to (``${secrets.<ns>:<secret>/...}``), read ahead of
rendering so the pure renderer gets a plain lookup."""

from __future__ import annotations

import json
import re

from cyclone.engine.controllers.caches import ControlCaches
from cyclone.engine.controllers.versioned import PerVersion
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
    control: Cluster, run: dict, workflow: dict, caches: ControlCaches
):
    """A lookup over every Secret the run, its workflow or its stages refer to."""
    stages = [
        caches.stages.get(run["metadata"]["namespace"], s.get("name", ""))
        for s in (workflow.get("spec") or {}).get("stages") or []
    ]
    references = secret_references(run.get("spec")) | _stored_references(workflow)
    for stage in stages:
        if stage is not None:
            references |= _stored_references(stage)
    found: dict[tuple[str, str], dict | None] = {}
    for namespace, name in references:
        try:
            found[(namespace, name)] = await control.get(kinds.SECRET, name, namespace)
        except NotFound:
            found[(namespace, name)] = None

    def lookup(namespace: str, name: str) -> dict | None:
        return found.get((namespace, name))

    return lookup
