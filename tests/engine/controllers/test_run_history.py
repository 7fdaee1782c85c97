"""The history controller prunes one workflow's runs, found through the run cache's index,
and never a run of another namespace that names a workflow of the same name."""

from __future__ import annotations

from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.history import (
    RUNS_BY_WORKFLOW,
    RunHistoryController,
    workflow_key_of_run,
)
from cyclone.kube import kinds
from cyclone.kube.informer import Informer


class RecordingControl:
    """Answers `get` from the cache's objects and records deletions."""

    def __init__(self, runs: Informer) -> None:
        self.runs = runs
        self.deleted: list[str] = []

    async def get(self, kind, name, namespace=None):
        return self.runs.get(namespace, name)

    async def delete(self, kind, name, namespace=None, **_: object):
        self.deleted.append(f"{namespace}/{name}")


def finished(namespace: str, name: str, workflow: str, minute: int) -> dict:
    return {"metadata": {"namespace": namespace, "name": name, "uid": f"{namespace}-{name}",
                         "resourceVersion": str(minute)},
            "spec": {"workflowRef": {"name": workflow}},
            "status": {"overall": {"phase": "Succeeded"},
                       "completionTime": f"2026-01-01T00:{minute:02d}:00Z"}}


async def test_another_tenants_runs_of_a_same_named_workflow_neither_count_nor_go() -> None:
    runs = Informer(None, kinds.WORKFLOW_RUN,  # type: ignore[arg-type]
                    indexers={RUNS_BY_WORKFLOW: workflow_key_of_run})
    for run in [finished("tenant-a", "a1", "wf", 1), finished("tenant-a", "a2", "wf", 2),
                finished("tenant-a", "a3", "wf", 3), finished("tenant-a", "x1", "other", 0),
                *(finished("tenant-b", f"b{i}", "wf", 10 + i) for i in range(5))]:
        runs._apply("ADDED", run)
    workflows = Informer(None, kinds.WORKFLOW)  # type: ignore[arg-type]
    control = RecordingControl(runs)
    controller = RunHistoryController(control, runs, workflows,  # type: ignore[arg-type]
                                      EngineConfig(max_workflowruns=2))
    await controller.reconcile("tenant-a/wf")
    assert control.deleted == ["tenant-a/a1"]
