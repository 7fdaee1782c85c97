"""The run history controller: keeps each workflow's finished runs within its limit.

Keyed by ``namespace/workflow``. A run that ends (or appears already ended, as after a
restart) and a change of the workflow enqueue the workflow; the reconcile applies
`core.history.runs_to_prune` to the workflow's runs in the cache and deletes the chosen
ones. Deleted runs go through their finalizer like any other deletion.

The workflow's runs come from the run cache's `RUNS_BY_WORKFLOW` index (by
``spec.workflowRef``, which every run has, where a label may be missing on a run made with
kubectl), so a reconcile costs the workflow's runs, not every run of the namespace.
"""

from __future__ import annotations

import logging

from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.caches import IndexedCache, ObjectCache
from cyclone.engine.core.history import history_limit, runs_to_prune
from cyclone.engine.core.phases import is_terminal
from cyclone.kube import kinds
from cyclone.kube.controller import Controller
from cyclone.kube.errors import ApiError, NotFound
from cyclone.kube.informer import Informer, split_key
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

RUNS_BY_WORKFLOW = "workflow"
"""The run cache's index of `workflow_key_of_run`."""


def workflow_of(run: dict) -> str | None:
    return ((run.get("spec") or {}).get("workflowRef") or {}).get("name") or None


def workflow_key_of_run(run: dict) -> str | None:
    """`namespace/workflow` of any run (its value in the `RUNS_BY_WORKFLOW` index)."""
    workflow = workflow_of(run)
    namespace = (run.get("metadata") or {}).get("namespace")
    return f"{namespace}/{workflow}" if workflow and namespace else None


def history_key_of_run(run: dict) -> str | None:
    """`namespace/workflow` of a finished run; None for a run that may still change."""
    if not is_terminal(((run.get("status") or {}).get("overall") or {}).get("phase")):
        return None
    return workflow_key_of_run(run)


def history_key_of_workflow(workflow: dict) -> str | None:
    meta = workflow.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta['name']}" if meta.get("name") else None


def enqueue_history(controller: Controller, runs: Informer, workflows: Informer) -> None:
    """Look at a workflow's history when one of its runs ends or shows up ended, and
    when the workflow changes (its limit may have)."""

    def on_run(event_type: str, run: dict, old: dict | None) -> None:
        if event_type == "DELETED":
            return
        key = history_key_of_run(run)
        if key is not None and (old is None or history_key_of_run(old) is None):
            controller.queue.add(key)

    runs.add_handler(on_run)
    controller.enqueue_on(workflows, history_key_of_workflow)


class RunHistoryController:
    def __init__(self, control: Cluster, runs: IndexedCache, workflows: ObjectCache,
                 config: EngineConfig) -> None:
        self.control = control
        self.runs = runs
        self.workflows = workflows
        self.config = config

    async def reconcile(self, key: str) -> float | None:
        namespace, workflow = split_key(key)
        keep = history_limit(self.workflows.get(namespace, workflow),
                             self.config.max_workflowruns)
        for run in runs_to_prune(self.runs.by_index(RUNS_BY_WORKFLOW, key), keep):
            await self._delete(run)
        return None

    async def _delete(self, run: dict) -> None:
        """Delete the run the cache showed, not a newer run that took its name."""
        meta = run["metadata"]
        try:
            current = await self.control.get(kinds.WORKFLOW_RUN, meta["name"],
                                             meta.get("namespace"))
            if current["metadata"].get("uid") != meta.get("uid"):
                return
            await self.control.delete(kinds.WORKFLOW_RUN, meta["name"], meta.get("namespace"))
            log.info("run history: deleted %s/%s", meta.get("namespace"), meta["name"])
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("run history: cannot delete %s/%s: %s",
                        meta.get("namespace"), meta["name"], exc)
            raise
