"""What the DAG component draws, read from stored objects: a workflow's stages and their
dependencies, and what a run's status says of each stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cyclone.engine.core.phases import PENDING, TERMINAL_PHASES
from cyclone.ui.durations import stage_seconds
from cyclone.ui.templating import format_seconds


@dataclass(frozen=True)
class NodeInfo:
    """One stage of a run, as its node shows it."""

    phase: str = PENDING
    duration: str = ""
    started: str | None = None
    finished: str | None = None
    attempt: int = 0
    message: str = ""

    def as_update(self) -> dict[str, str]:
        """The shape `CycloneDag.update` takes."""
        return {"phase": self.phase, "duration": self.duration}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def stage_phase(entry: Mapping[str, Any] | None) -> str:
    """The phase of a run status's entry for one stage; `Pending` before it has one."""
    return str(_mapping(_mapping(entry).get("status")).get("phase") or PENDING)


def workflow_graph(workflow: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """Stage names and (dependency, dependent) edges of `spec.stages`, in spec order."""
    names: list[str] = []
    edges: list[tuple[str, str]] = []
    for item in _mapping(workflow.get("spec")).get("stages") or []:
        if not isinstance(item, Mapping) or not item.get("name"):
            continue
        name = str(item["name"])
        names.append(name)
        edges.extend((str(dep), name) for dep in item.get("depends") or [])
    return names, edges


def stage_info(stage: Mapping[str, Any], now: datetime | None = None) -> NodeInfo:
    """A run status's entry for one stage as a node: the duration runs on while it runs."""
    status = _mapping(stage.get("status"))
    phase = stage_phase(stage)
    started = status.get("startTime")
    finished = status.get("lastTransitionTime") if phase in TERMINAL_PHASES else None
    seconds = stage_seconds(stage, now)
    return NodeInfo(phase=phase, duration=format_seconds(seconds), started=started,
                    finished=finished, attempt=int(stage.get("attempts") or 0),
                    message=str(status.get("message") or ""))


def run_node_info(run: Mapping[str, Any], now: datetime | None = None) -> dict[str, NodeInfo]:
    """Each stage of the run's status as its node shows it."""
    stages = _mapping(_mapping(run.get("status")).get("stages"))
    return {str(name): stage_info(_mapping(stage), now) for name, stage in stages.items()}
