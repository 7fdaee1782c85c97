"""The per-pod Secrets of credentials bound from a project's integrations do not outlive
their run: collecting a finished run, or deleting one, deletes every such Secret its labels
give to the run, owned by a pod or not (a crash between the Secret and its pod leaves one
no owner takes, and a kube-apiserver without its controller manager collects nothing).
Driven one reconcile at a time, on both clusters."""

from __future__ import annotations

import base64
import json

import pytest

from cyclone.api import keys
from cyclone.engine.controllers.launch import store_bound_secret
from cyclone.kube import kinds
from cyclone.server.builtins import builtin_resource_types

from ..harness import BACKENDS, NAMESPACE, overall, shell_stage, workflow, workflow_run
from .test_run_controller import World, control_cluster, make_world

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

TOKEN = "glpat-bound-secret-7d1e"
RUN_LABELS = {keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
              keys.LABEL_WORKFLOWRUN: "r1"}


def _secret(name: str, labels: dict, annotations: dict | None = None, **meta) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels,
                         "annotations": annotations or {}, **meta},
            "data": {"token": base64.b64encode(b"left-over").decode()}}


async def _bound_project(world: World) -> None:
    """Project ``p`` binds its Git resource ``src`` from its SCM integration ``gitsrv``."""
    git = next(t for t in builtin_resource_types() if t["spec"]["type"] == "Git")
    git["metadata"]["namespace"] = NAMESPACE
    world.caches.resources.put(git)
    world.caches.resources.put({
        "apiVersion": keys.API_VERSION, "kind": "Resource",
        "metadata": {"name": "src", "namespace": NAMESPACE},
        "spec": {"type": "Git", "parameters": [{"name": "SCM_REVISION", "value": "main"}]}})
    world.caches.projects.put({
        "apiVersion": keys.API_VERSION, "kind": "Project",
        "metadata": {"name": "p", "namespace": NAMESPACE},
        "spec": {"integrations": [{"type": "SCM", "name": "gitsrv"}]}})
    spec = {"type": "SCM", "scm": {"type": "GitLab", "server": "http://127.0.0.1:9/app.git",
                                   "token": TOKEN}}
    await world.cluster.create({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "gitsrv", "namespace": NAMESPACE,
                     "labels": {keys.LABEL_INTEGRATION_TYPE: "SCM"}},
        "data": {"integration": base64.b64encode(json.dumps(spec).encode()).decode()}})
    stage = shell_stage("a", "true")
    stage["spec"]["pod"]["inputs"] = {"resources": [
        {"name": "src", "type": "Git", "path": "/workspace/src"}]}
    flow = workflow("wf", [{"name": "a"}])
    flow["metadata"]["labels"] = {keys.LABEL_PROJECT: "p"}
    world.define(stage, flow)


async def _started(world: World) -> dict:
    """r1 started, its stage pod's credentials in a Secret that pod owns."""
    await world.submit(workflow_run("r1", "wf"))
    _, run = await world.look()
    pod = await world.pod_of(run, "a")
    bound = await world.cluster.get(kinds.SECRET, f"{pod['metadata']['name']}-bound",
                                    NAMESPACE)
    assert TOKEN.encode() in [base64.b64decode(v) for v in bound["data"].values()]
    assert [o["uid"] for o in bound["metadata"]["ownerReferences"]] == [
        pod["metadata"]["uid"]]
    return run


async def _bound_secrets(world: World) -> list[str]:
    listed = await world.cluster.list(kinds.SECRET, NAMESPACE,
                                      label_selector=keys.LABEL_WORKFLOWRUN)
    return sorted(s["metadata"]["name"] for s in listed.items
                  if s["metadata"]["name"].endswith("-bound"))


async def _leftovers(world: World) -> None:
    """A Secret of r1 whose pod never came, one of run r2, one of an r1 of another
    namespace."""
    for secret in (
            _secret("wf-a-crashed-bound", RUN_LABELS),
            _secret("wf-a-other-run-bound", {**RUN_LABELS, keys.LABEL_WORKFLOWRUN: "r2"}),
            _secret("wf-a-elsewhere-bound", RUN_LABELS,
                    {keys.ANNOTATION_META_NAMESPACE: "cyclone--elsewhere"})):
        await world.cluster.create(secret)


async def test_collecting_a_finished_run_deletes_its_bound_credentials_pod_or_not(
        tmp_path, backend):
    async with control_cluster(tmp_path, backend) as cluster:
        world = make_world(cluster)
        world.config = world.config.model_copy(update={
            "gc_enabled": True, "gc_delay_seconds": 0, "gc_log_wait_seconds": 0})
        world.restart()
        await _bound_project(world)
        await _leftovers(world)
        run = await _started(world)
        await world.pod_ends(run, "a", "Succeeded")
        _, run = await world.look()
        assert overall(run)["phase"] == "Succeeded"
        await world.look()
        workloads = await cluster.list(kinds.POD, NAMESPACE, label_selector=(
            f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}"))
        assert workloads.items == []
        assert await _bound_secrets(world) == ["wf-a-elsewhere-bound", "wf-a-other-run-bound"]


async def test_deleting_a_run_without_gc_deletes_its_bound_credentials(tmp_path, backend):
    async with control_cluster(tmp_path, backend) as cluster:
        world = make_world(cluster)
        await _bound_project(world)
        await _leftovers(world)
        run = await _started(world)
        world.pods.put(await world.pod_of(run, "a"))
        await world.cluster.delete(kinds.WORKFLOW_RUN, "r1", NAMESPACE)
        for listed in (await world.cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)).items:
            world.caches.runs.put(listed)
        assert world.controller is not None
        await world.controller.reconcile(f"{NAMESPACE}/r1")
        assert await _bound_secrets(world) == ["wf-a-elsewhere-bound", "wf-a-other-run-bound"]


async def test_a_bound_secret_found_already_is_made_anew_without_its_stale_owner(
        tmp_path, backend):
    async with control_cluster(tmp_path, backend) as cluster:
        stale = [{"apiVersion": "v1", "kind": "Pod", "name": "wf-a-x1",
                  "uid": "0b8e5c0e-0000-4000-8000-00000000dead"}]
        left = await cluster.create(_secret("wf-a-x1-bound", {}, ownerReferences=stale))
        fresh = _secret("wf-a-x1-bound", RUN_LABELS,
                        {keys.ANNOTATION_META_NAMESPACE: NAMESPACE})
        fresh["data"] = {"csc-pull-src.SCM_AUTH": base64.b64encode(TOKEN.encode()).decode()}
        await store_bound_secret(cluster, fresh)
        stored = await cluster.get(kinds.SECRET, "wf-a-x1-bound", NAMESPACE)
        assert not stored["metadata"].get("ownerReferences"), stored["metadata"]
        assert stored["metadata"]["uid"] != left["metadata"]["uid"], (
            "a Secret the garbage collector may have judged is replaced, not rewritten")
        assert stored["metadata"]["labels"] == RUN_LABELS
        assert stored["data"] == fresh["data"]


class _CollectedBeforeThePatch:
    """The cluster as the engine sees it when the garbage collector deletes a Secret of a
    gone owner between the engine's create (refused: it exists) and its rewrite."""

    def __init__(self, cluster) -> None:
        self._cluster = cluster
        self.collected = 0

    def __getattr__(self, name):
        return getattr(self._cluster, name)

    async def patch(self, kind, name, patch, namespace=None, **options):
        if kind == kinds.SECRET and not self.collected:
            self.collected += 1
            await self._cluster.delete(kind, name, namespace)
        return await self._cluster.patch(kind, name, patch, namespace, **options)


async def test_a_bound_secret_collected_during_its_refresh_is_created_again(
        tmp_path, backend):
    async with control_cluster(tmp_path, backend) as cluster:
        await cluster.create(_secret("wf-a-x1-bound", {}))
        fresh = _secret("wf-a-x1-bound", RUN_LABELS,
                        {keys.ANNOTATION_META_NAMESPACE: NAMESPACE})
        fresh["data"] = {"csc-pull-src.SCM_AUTH": base64.b64encode(TOKEN.encode()).decode()}
        racing = _CollectedBeforeThePatch(cluster)
        await store_bound_secret(racing, fresh)
        assert racing.collected == 1
        stored = await cluster.get(kinds.SECRET, "wf-a-x1-bound", NAMESPACE)
        assert stored["metadata"]["labels"] == RUN_LABELS
        assert stored["data"] == fresh["data"]
