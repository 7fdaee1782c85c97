"""A run as readers see it: `status.stages` filled in from the stage chunks of a large run
(`cyclone.api.stagechunks`), read from the cluster in one list. The server, the UI and the
log and artifact routes read every run they show through `read_run`; the engine reads the
same chunks from its informer cache instead (`controllers.chunks`)."""

from __future__ import annotations

from cyclone.api import stagechunks
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.protocol import Cluster


async def read_run(cluster: Cluster, run: dict) -> dict:
    """``run`` with the stage entries of its chunks; a run that keeps its stages (every
    run at or below the engine's threshold) is returned as it is, without a read."""
    if stagechunks.recorded_chunks(run) is None:
        return run
    meta = run["metadata"]
    listed = await cluster.list(
        kinds.WORKFLOW_RUN_STAGES, meta["namespace"],
        label_selector=f"{stagechunks.LABEL_CHUNK_OF}={meta['name']}")
    by_name = {chunk["metadata"]["name"]: chunk for chunk in listed.items}
    return stagechunks.assemble(run, by_name.get)


def chunk_of_run(chunk: dict) -> str | None:
    """The name of the run a chunk holds stages of."""
    return (chunk.get("spec") or {}).get("run")


async def read_run_stage(cluster: Cluster, run: dict, stage: str) -> dict:
    """``run`` with the entry of one stage filled in (the only one in ``status.stages`` of
    a large run, read from the one chunk that holds it); a small run as it is."""
    count = stagechunks.recorded_chunks(run)
    if count is None:
        return run
    meta = run["metadata"]
    name = stagechunks.chunk_name(meta["name"], stagechunks.chunk_index(stage, count))
    try:
        chunk = await cluster.get(kinds.WORKFLOW_RUN_STAGES, name, meta["namespace"])
    except NotFound:
        chunk = None
    entries = ((chunk.get("status") or {}).get("stages") or {}) if stagechunks.belongs_to(
        chunk, run) and chunk is not None else {}
    stages = {stage: entries[stage]} if stage in entries else {}
    return {**run, "status": {**(run.get("status") or {}), "stages": stages}}
