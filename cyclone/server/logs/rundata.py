"""The server's data of a run lives and dies with the run.

Both stores (logs and artifacts) keep a run's data under
``<root>/{tenant}/{project}/{workflow}/{run}/{uid}/``, the uid being the run's
``metadata.uid``. A run deleted and created again under the same name has another uid,
so it starts clean even when it is created a moment after the delete, and routes serve
only the data of the uid the run has now (`resolve_run_ref`).

Removal is level-based. Deleting a run or a tenant through the REST API removes its
data at once (`remove_run_data`, `remove_tenant_data`); `RunDataSweeper`, run on the
leading server replica, removes the data of a run as soon as it is gone from the cluster
however it was deleted (kubectl, the engine's history limit, namespace deletion), and
sweeps periodically whatever has no run any more (after a crash, say): folders of
other uids, folders left in the older layout without a uid, and whole tenants whose
namespace is gone.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cyclone.api import keys
from cyclone.engine.runstages import read_run
from cyclone.kube import errors, kinds
from cyclone.kube.informer import Informer
from cyclone.kube.protocol import Cluster
from cyclone.server.logs.store import InvalidLogName, RunRef

log = logging.getLogger(__name__)

DEFAULT_SWEEP_SECONDS = 300.0
EMPTY_DIR_GRACE_SECONDS = 30.0
"""A directory left empty is removed only once it has not changed for this long, so a
writer that has just created it is not robbed of it."""


def run_matches(run: dict, project: str, workflow: str) -> bool:
    """Whether a run belongs to the project and workflow of a path. A run created
    without labels (by kubectl) is matched by its ``spec.workflowRef``."""
    labels = (run.get("metadata") or {}).get("labels") or {}
    run_workflow = labels.get(keys.LABEL_WORKFLOW) or (
        (run.get("spec") or {}).get("workflowRef") or {}).get("name")
    return labels.get(keys.LABEL_PROJECT, project) == project and run_workflow == workflow


async def current_run(cluster: Cluster, ref: RunRef) -> dict | None:
    """The run a path names, as it is now; None when there is none in the tenant."""
    try:
        run = await cluster.get(kinds.WORKFLOW_RUN, ref.run, keys.tenant_namespace(ref.tenant))
    except (errors.NotFound, errors.BadRequest, errors.Invalid):
        return None
    return await read_run(cluster, run) if run_matches(run, ref.project, ref.workflow) else None


async def resolve_run_ref(cluster: Cluster | None, ref: RunRef) -> RunRef:
    """`ref` keyed by the uid of the run it names now; NotFound when there is no such run.

    Without a cluster (a store used on its own) the ref is returned as it is.
    """
    if cluster is None:
        return ref
    run = await current_run(cluster, ref)
    if run is None:
        raise errors.NotFound(f"workflowrun {ref.run!r} not found")
    return RunRef(ref.tenant, ref.project, ref.workflow, ref.run,
                  uid=run["metadata"].get("uid") or "")


def _tenant_of_namespace(namespace: str | None) -> str | None:
    if not namespace or not namespace.startswith(keys.TENANT_NAMESPACE_PREFIX):
        return None
    return namespace[len(keys.TENANT_NAMESPACE_PREFIX):]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_uid_data(roots: Iterable[Path], tenant: str, run: str, uid: str) -> int:
    """Remove every folder of run `run` with uid `uid` of a tenant, in any project or
    workflow; returns how many went."""
    removed = 0
    try:
        RunRef(tenant, "p", "w", run, uid=uid)
    except InvalidLogName:
        return 0
    for root in roots:
        for path in (root / tenant).glob(f"*/*/{run}/{uid}"):
            _remove(path)
            removed += 1
    return removed


def remove_run_data_of(roots: Iterable[Path], run: dict) -> int:
    """Remove the data a run object left in the stores (by its uid)."""
    meta = run.get("metadata") or {}
    tenant = _tenant_of_namespace(meta.get("namespace"))
    if not tenant or not meta.get("uid") or not meta.get("name"):
        return 0
    return remove_uid_data(roots, tenant, meta["name"], meta["uid"])


def remove_tenant_dirs(roots: Iterable[Path], tenant: str) -> None:
    """Remove everything the stores hold for a tenant."""
    try:
        RunRef(tenant, "p", "w", "r")
    except InvalidLogName:
        return
    for root in roots:
        _remove(root / tenant)


@dataclass(frozen=True)
class StoredRun:
    """One run folder of a store: `<root>/{tenant}/{project}/{workflow}/{run}`."""

    tenant: str
    run: str
    path: Path

    def entries(self) -> list[Path]:
        try:
            return list(self.path.iterdir())
        except OSError:
            return []


def _dirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def stored_runs(tenant_dir: Path) -> Iterator[StoredRun]:
    for project in _dirs(tenant_dir):
        for workflow in _dirs(project):
            for run in _dirs(workflow):
                yield StoredRun(tenant_dir.name, run.name, run)


def remove_empty_dirs(top: Path, *, grace: float = EMPTY_DIR_GRACE_SECONDS,
                      now: float | None = None) -> None:
    """Remove directories under `top` that are empty and unchanged for `grace` seconds,
    deepest first."""
    now = time.time() if now is None else now
    if not top.is_dir():
        return
    for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        _rmdir_if_stale(path, grace, now)


def _rmdir_if_stale(path: Path, grace: float, now: float) -> None:
    try:
        if now - path.stat().st_mtime >= grace:
            path.rmdir()
    except OSError:
        pass


class RunDataSweeper:
    """Removes store data that no run owns any more; see the module docstring."""

    def __init__(self, cluster: Cluster, roots: Iterable[Path], *,
                 interval: float = DEFAULT_SWEEP_SECONDS,
                 informer: Informer | None = None) -> None:
        self.cluster = cluster
        self.roots = list(roots)
        self.interval = interval
        self.informer = informer or Informer(cluster, kinds.WORKFLOW_RUN)
        self.namespaces = Informer(cluster, kinds.NAMESPACE)

    async def run(self) -> None:
        """Sweep until cancelled."""

        def on_run(event_type: str, run: dict, _old: dict | None) -> None:
            if event_type == "DELETED":
                asyncio.get_running_loop().run_in_executor(
                    None, remove_run_data_of, self.roots, run)

        def on_namespace(event_type: str, namespace: dict, _old: dict | None) -> None:
            tenant = _tenant_of_namespace(namespace["metadata"].get("name"))
            if event_type == "DELETED" and tenant:
                asyncio.get_running_loop().run_in_executor(
                    None, remove_tenant_dirs, self.roots, tenant)

        self.informer.add_handler(on_run)
        self.namespaces.add_handler(on_namespace)
        async with asyncio.TaskGroup() as group:
            group.create_task(self.informer.run(), name="run-data-informer")
            group.create_task(self.namespaces.run(), name="run-data-namespaces")
            await self.informer.wait_synced()
            while True:
                try:
                    await self.sweep()
                except errors.ApiError as err:
                    log.warning("run data sweep: %s", err)
                except OSError as err:
                    log.warning("run data sweep: %s", err)
                await asyncio.sleep(self.interval)

    async def sweep(self) -> int:
        """One pass over both stores; returns how many folders or files went."""
        removed = 0
        for root in self.roots:
            for tenant_dir in await asyncio.to_thread(_dirs, root):
                try:
                    removed += await self._sweep_tenant(tenant_dir)
                except errors.ApiError as err:
                    log.warning("run data sweep of tenant %s: %s", tenant_dir.name, err)
            await asyncio.to_thread(remove_empty_dirs, root)
        return removed

    async def _sweep_tenant(self, tenant_dir: Path) -> int:
        namespace = keys.tenant_namespace(tenant_dir.name)
        try:
            await self.cluster.get(kinds.NAMESPACE, namespace)
        except errors.NotFound:
            await asyncio.to_thread(_remove, tenant_dir)
            log.info("removed the stored data of deleted tenant %s", tenant_dir.name)
            return 1
        removed = 0
        for stored in await asyncio.to_thread(lambda: list(stored_runs(tenant_dir))):
            cached = self.informer.get(namespace, stored.run)
            known = (cached or {}).get("metadata", {}).get("uid")
            live: str | None = None
            asked = False
            for entry in await asyncio.to_thread(stored.entries):
                if entry.name == known:
                    continue
                if not asked:
                    live, asked = await self._live_uid(namespace, stored.run), True
                if entry.name != live:
                    await asyncio.to_thread(_remove, entry)
                    removed += 1
        return removed

    async def _live_uid(self, namespace: str, name: str) -> str | None:
        """The uid the run has in the cluster now (the cache may lag behind a run
        created a moment ago)."""
        try:
            run = await self.cluster.get(kinds.WORKFLOW_RUN, name, namespace)
        except errors.NotFound:
            return None
        return run["metadata"].get("uid")
