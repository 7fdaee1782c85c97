"""The runs the pages show, found in the run index rather than by listing every run of a
tenant, project or workflow: summaries where a summary says enough, and only the few runs a
page shows in full read whole, by name.

Until the index has its first list (just after the server started) the runs are listed
instead, so a page never waits long or shows nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from cyclone.engine.core.phases import SUCCEEDED
from cyclone.kube import errors, kinds
from cyclone.server import runs
from cyclone.server.crud import list_objects
from cyclone.server.scopes import Scope, get_owned
from cyclone.server.state import ServerState
from cyclone.ui.run_index import RunFilter, RunSummary, encode_cursor, run_index, summarize

READY_WAIT_SECONDS = 2.0
AFTER_EVERY_NAME = "~"
"""Sorts after every object name: the index cursor at the end of a second takes in the
runs created in the same second as the run (creation times have whole seconds)."""


def newest_first(summaries: list[RunSummary]) -> list[RunSummary]:
    """The run index's order: creation time, then name, newest first."""
    return sorted(summaries, key=lambda s: s.order, reverse=True)


def scope_filter(scope: Scope, **more: str) -> RunFilter:
    return RunFilter(project=scope.project or "", workflow=scope.workflow or "", **more)


async def _ready(state: ServerState) -> bool:
    try:
        await run_index(state).ready(within=READY_WAIT_SECONDS)
    except TimeoutError:
        return False
    return True


async def _listed(scope: Scope) -> list[dict]:
    return await list_objects(runs.RUNS, scope)


async def read_run(scope: Scope, name: str) -> dict | None:
    """A run of the scope, whole; None when it is gone (deleted since the index saw it)."""
    try:
        return await get_owned(scope, kinds.WORKFLOW_RUN, name, "workflowrun")
    except errors.NotFound:
        return None


async def _read_all(scope: Scope, summaries: list[RunSummary]) -> list[dict]:
    found = await asyncio.gather(*(read_run(scope, s.name) for s in summaries))
    return [r for r in found if r is not None]


async def summaries(scope: Scope, state: ServerState) -> list[RunSummary]:
    """The summary of every run of the scope (tenant, project or workflow), newest first."""
    if not await _ready(state):
        return newest_first([summarize(r) for r in await _listed(scope)])
    where = scope_filter(scope)
    return newest_first([s for s in run_index(state).runs(scope.namespace) if where.matches(s)])


async def newest_runs(scope: Scope, state: ServerState, limit: int
                      ) -> tuple[list[dict], list[RunSummary]]:
    """The `limit` newest runs of the scope read whole, and the summaries of all its runs
    (newest first, for counts and figures over more runs than are shown)."""
    every = await summaries(scope, state)
    return await _read_all(scope, every[:limit]), every


async def recent_green_runs(scope: Scope, run: dict, state: ServerState, limit: int
                            ) -> list[dict]:
    """The workflow's latest `limit` successful runs created before `run` (or in its
    second), newest first, read whole."""
    mine = summarize(run)
    if not await _ready(state):
        green = [summarize(r) for r in await _listed(scope)]
        page = newest_first([s for s in green if s.phase == SUCCEEDED and
                             s.order <= (mine.created, AFTER_EVERY_NAME)])[:limit + 1]
    else:
        up_to_its_second = encode_cursor(replace(mine, name=AFTER_EVERY_NAME))
        page = run_index(state).page(scope.namespace, scope_filter(scope, phase=SUCCEEDED),
                                     limit=limit + 1, older=up_to_its_second).runs
    return (await _read_all(scope, [s for s in page if s.name != mine.name]))[:limit]


async def picker_runs(scope: Scope, state: ServerState, limit: int) -> list[RunSummary]:
    """The `limit` newest runs of the workflow, as summaries (a picker's options)."""
    if not await _ready(state):
        return newest_first([summarize(r) for r in await _listed(scope)])[:limit]
    return run_index(state).newest(scope.namespace, scope_filter(scope), limit)
