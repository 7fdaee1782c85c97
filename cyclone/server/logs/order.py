"""In which order a run's stored logs are answered: stages as they started, containers of a
stage with the workload first."""

from __future__ import annotations

from collections.abc import Iterable


def stage_log_order(run: dict | None, stored: Iterable[str]) -> list[str]:
    """The stored stages in the order they started (by ``startTime``, then by the order the
    run's status lists them); stages the status does not date come last, by name."""
    statuses = ((run or {}).get("status") or {}).get("stages") or {}
    listed = list(statuses)

    def key(stage: str) -> tuple[int, str, int, str]:
        started = ((statuses.get(stage) or {}).get("status") or {}).get("startTime")
        if not started:
            return (1, "", 0, stage)
        return (0, started, listed.index(stage), stage)

    return sorted(stored, key=key)


def log_header(stage: str, container: str, workload: bool) -> str:
    """The line before one log when several are shown (`cyclone logs -f` prints the same)."""
    return f"==> {stage} <==\n" if workload else f"==> {stage}/{container} <==\n"
