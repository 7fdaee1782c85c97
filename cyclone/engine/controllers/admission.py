"""Parallelism admission across all runs the engine sees, one decision at a time.

Decisions are taken under a lock and remembered until the informer cache shows them, so
two workers never both take the last free slot from a stale cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from cyclone.engine.config import EngineConfig
from cyclone.engine.core.parallelism import Admission, ParallelismLimits, RunInfo, admit_run
from cyclone.engine.core.phases import PENDING, RUNNING
from cyclone.engine.core.timefmt import parse_rfc3339


def run_id(run: dict) -> str:
    meta = run["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def run_info(run: dict) -> RunInfo:
    meta = run["metadata"]
    status = run.get("status") or {}
    workflow = ((run.get("spec") or {}).get("workflowRef") or {}).get("name") or ""
    return RunInfo(
        name=run_id(run),
        workflow=f"{meta['namespace']}/{workflow}",
        created=parse_rfc3339(meta.get("creationTimestamp") or "1970-01-01T00:00:00Z"),
        phase=(status.get("overall") or {}).get("phase"),
        queued=bool(status.get("queued")),
    )


def limits_of(config: EngineConfig) -> ParallelismLimits:
    return ParallelismLimits(
        max_running=config.overall.max_running,
        max_queued=config.overall.max_queued,
        per_workflow_max_running=config.per_workflow.max_running,
        per_workflow_max_queued=config.per_workflow.max_queued,
    )


class AdmissionGate:
    def __init__(self, config: EngineConfig) -> None:
        self._limits = limits_of(config)
        self._unlimited = self._limits == ParallelismLimits()
        self._lock = asyncio.Lock()
        self._decided: dict[str, tuple[str | None, RunInfo]] = {}

    @property
    def unlimited(self) -> bool:
        """No limit is configured: every run starts at once."""
        return self._unlimited

    async def decide(self, run: dict, all_runs: Iterable[dict]) -> Admission:
        """Start, queue or reject ``run``; the caller writes the decision to its status.

        A decision is remembered with the resourceVersion it was taken on; while the cache
        still shows that version, the remembered decision stands in for it.
        """
        if self._unlimited:
            return Admission.START
        async with self._lock:
            infos: dict[str, RunInfo] = {}
            for other in [*all_runs, run]:
                info = run_info(other)
                version = other["metadata"].get("resourceVersion")
                remembered = self._decided.get(info.name)
                if remembered is not None:
                    if remembered[0] == version:
                        info = remembered[1]
                    else:
                        self._decided.pop(info.name, None)
                infos[info.name] = info
            me = run_info(run)
            infos[me.name] = me
            decision = admit_run(me.name, infos.values(), self._limits)
            version = run["metadata"].get("resourceVersion")
            if decision == Admission.START:
                self._decided[me.name] = (
                    version, RunInfo(me.name, me.workflow, me.created, RUNNING)
                )
            elif decision == Admission.QUEUE:
                self._decided[me.name] = (
                    version, RunInfo(me.name, me.workflow, me.created, PENDING, queued=True)
                )
            return decision
