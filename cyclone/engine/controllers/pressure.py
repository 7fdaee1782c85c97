"""Whether the engine is behind its work, so that progress writes may wait
(`core.writeback`): on an idle engine every change is written at once, and users see a
stage start as soon as its pod is made; a busy one folds a run's progress into the write
that follows, spending its API budget on outcomes."""

from __future__ import annotations

from typing import Protocol


class _Queue(Protocol):
    def __len__(self) -> int: ...


class _Budget(Protocol):
    burst: int

    def available(self) -> float: ...


def engine_behind(queue: _Queue, budget: _Budget | None) -> bool:
    """Runs wait for a worker, or the API client has spent more than half its burst."""
    return len(queue) > 0 or (budget is not None and budget.available() < budget.burst / 2)
