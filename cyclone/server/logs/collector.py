"""The log collector: follows every stage container's log of a cluster into the log store.

For each Cyclone stage pod (labels `pod.kubernetes.io/created-by=cyclone`,
`pod.kubernetes.io/kind=workload`) the collector follows each container that has started
through `Cluster.pod_logs(follow=True)`, masks the values of the Secrets the pod sees, and
appends the result to the store. It resumes from the source offset the store recorded,
so a restarted collector never duplicates a line, and marks a log complete once its
container has ended (or its pod is gone). Once every log of a finished pod is complete it
annotates the pod `stage.cyclone.dev/logs-collected`, which the engine's GC waits for
before it deletes the pod. Stored logs outlive the pod.
"""

from __future__ import annotations

import asyncio
import logging

from cyclone.api import keys
from cyclone.api.common import FINISHED_POD_PHASES
from cyclone.engine.core.tenancy import tenant_of
from cyclone.engine.placement import read_policy
from cyclone.kube import errors, kinds
from cyclone.kube.informer import Informer
from cyclone.kube.protocol import Cluster
from cyclone.server.logs.masking import LineMaskingStream, SecretMasker
from cyclone.server.logs.secrets import control_secret_values, pod_secret_values
from cyclone.server.logs.store import InvalidLogName, LogRef, LogStore, LogWriter, RunRef

log = logging.getLogger(__name__)

ANNOTATION_ATTEMPT = "stage.cyclone.dev/attempt"
STAGE_POD_SELECTOR = (
    f"{keys.LABEL_POD_CREATED_BY}={keys.CREATED_BY_CYCLONE},"
    f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}"
)



def _is_stage_pod(pod: dict) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return (labels.get(keys.LABEL_POD_CREATED_BY) == keys.CREATED_BY_CYCLONE
            and labels.get(keys.LABEL_POD_KIND) == keys.POD_KIND_WORKLOAD)


def meta_namespace_of_pod(pod: dict) -> str:
    """The namespace of the pod's Cyclone objects (its run, workflow, integrations)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return annotations.get(keys.ANNOTATION_META_NAMESPACE) or keys.tenant_namespace(
        tenant_of_pod(pod) or keys.DEFAULT_TENANT)


def tenant_of_pod(pod: dict) -> str | None:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(keys.LABEL_TENANT):
        return labels[keys.LABEL_TENANT]
    namespace = (meta.get("annotations") or {}).get(keys.ANNOTATION_META_NAMESPACE) or meta.get(
        "namespace"
    )
    if not namespace:
        return None
    if namespace.startswith(keys.TENANT_NAMESPACE_PREFIX):
        return namespace[len(keys.TENANT_NAMESPACE_PREFIX):]
    return namespace


def stage_log_refs(pod: dict) -> dict[str, LogRef]:
    """Container name → where its log is stored; empty for a pod Cyclone did not label."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    tenant = tenant_of_pod(pod)
    project = labels.get(keys.LABEL_PROJECT)
    workflow = labels.get(keys.LABEL_WORKFLOW)
    run = labels.get(keys.LABEL_WORKFLOWRUN)
    stage = labels.get(keys.LABEL_STAGE)
    if not (tenant and project and workflow and run and stage):
        return {}
    spec = pod.get("spec") or {}
    try:
        uid = ((pod.get("metadata") or {}).get("annotations") or {}).get(
            keys.ANNOTATION_WORKFLOWRUN_UID) or ""
        run_ref = RunRef(tenant, project, workflow, run, uid=uid)
        return {
            c["name"]: LogRef(run_ref, stage, c["name"])
            for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
            if c.get("name")
        }
    except InvalidLogName as err:
        log.warning("pod %s: cannot store its logs: %s", pod["metadata"].get("name"), err)
        return {}


def _container_statuses(pod: dict) -> dict[str, dict]:
    status = pod.get("status") or {}
    return {
        s["name"]: s.get("state") or {}
        for s in [*(status.get("initContainerStatuses") or []),
                  *(status.get("containerStatuses") or [])]
        if s.get("name")
    }


def pod_source(pod: dict) -> str:
    """What identifies one pod among the attempts of a stage: its uid, else its name."""
    meta = pod.get("metadata") or {}
    return meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _attempt_banner(pod: dict) -> bytes:
    meta = pod.get("metadata") or {}
    attempt = (meta.get("annotations") or {}).get(ANNOTATION_ATTEMPT)
    label = f"attempt {attempt}, pod {meta.get('name')}" if attempt else f"pod {meta.get('name')}"
    return f"\n==> {label} <==\n".encode()


def container_started(pod: dict, container: str) -> bool:
    state = _container_statuses(pod).get(container) or {}
    return "running" in state or "terminated" in state


def container_ended(pod: dict, container: str) -> bool:
    if (pod.get("status") or {}).get("phase") in FINISHED_POD_PHASES:
        return True
    return "terminated" in (_container_statuses(pod).get(container) or {})


class LogCollector:
    """Follows the logs of every stage pod of one cluster into a log store.

    Driven by a pod informer: its own (stage pods only, across namespaces), or `informer`
    when the caller shares one that it runs itself; it must see the stage pods. `control`
    is the cluster holding the Cyclone objects and integrations (default: `cluster`).
    """

    def __init__(self, cluster: Cluster, store: LogStore, *, control: Cluster | None = None,
                 informer: Informer | None = None, retry_delay: float = 1.0,
                 resync_seconds: float = 60.0,
                 cluster_name: str = keys.CONTROL_CLUSTER_NAME) -> None:
        self.cluster = cluster
        self.cluster_name = cluster_name
        self.control = control or cluster
        self.store = store
        self.retry_delay = retry_delay
        self._own_informer = informer is None
        self.informer = informer or Informer(
            cluster, kinds.POD, None, label_selector=STAGE_POD_SELECTOR,
            resync_seconds=resync_seconds,
        )
        self._following: dict[LogRef, asyncio.Task[None]] = {}
        self._marking: set[str] = set()
        self._stopped = False
        self.pods_examined = 0
        """Stage pod events this collector has decided on (followed or not)."""
        self.follows_started = 0
        """Container logs it has begun to follow."""

    async def run(self) -> None:
        """Collect until cancelled."""
        self._stopped = False
        async with asyncio.TaskGroup() as group:
            def on_pod(event_type: str, pod: dict, _old: dict | None) -> None:
                if not self._stopped and event_type != "DELETED" and _is_stage_pod(pod):
                    self._follow_started_containers(group, pod)
                    self._mark_if_collected(group, pod)
                    self.pods_examined += 1

            if self._own_informer:
                group.create_task(self.informer.run())
            self.informer.add_handler(on_pod)
            try:
                await asyncio.get_running_loop().create_future()
            finally:
                self._stopped = True

    def _follow_started_containers(self, group: asyncio.TaskGroup, pod: dict) -> None:
        """Start a follower for each started container whose log is not yet complete.

        Followers are keyed by log, not by pod: a retried stage's next pod waits until the
        previous pod's follower is done, then continues the same log after a banner.
        """
        for container, ref in stage_log_refs(pod).items():
            if ref in self._following or not container_started(pod, container):
                continue
            if self.store.exists(ref) and self.store.state(ref).finished(pod_source(pod)):
                continue
            task = group.create_task(self._follow(pod, container, ref))
            self._following[ref] = task
            self.follows_started += 1
            task.add_done_callback(lambda _t, ref=ref: self._follower_done(group, ref))

    def _follower_done(self, group: asyncio.TaskGroup, ref: LogRef) -> None:
        self._following.pop(ref, None)
        if self._stopped:
            return
        for pod in self.informer.list(label_selector=STAGE_POD_SELECTOR):
            if ref in stage_log_refs(pod).values():
                self._follow_started_containers(group, pod)
                self._mark_if_collected(group, pod)

    def logs_collected(self, pod: dict) -> bool:
        """Whether the pod has finished and every log of a container that ran is stored."""
        if (pod.get("status") or {}).get("phase") not in FINISHED_POD_PHASES:
            return False
        source = pod_source(pod)
        return all(
            not container_started(pod, container)
            or (self.store.exists(ref) and self.store.state(ref).finished(source))
            for container, ref in stage_log_refs(pod).items()
        )

    def _mark_if_collected(self, group: asyncio.TaskGroup, pod: dict) -> None:
        meta = pod.get("metadata") or {}
        if (meta.get("annotations") or {}).get(keys.ANNOTATION_LOGS_COLLECTED):
            return
        uid = pod_source(pod)
        if uid in self._marking or not self.logs_collected(pod):
            return
        self._marking.add(uid)
        group.create_task(self._mark_collected(pod))

    async def _mark_collected(self, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            await self.cluster.patch(
                kinds.POD, meta["name"],
                {"metadata": {"annotations": {keys.ANNOTATION_LOGS_COLLECTED: "true"}}},
                meta.get("namespace"),
            )
        except errors.NotFound:
            pass
        except errors.ApiError as err:
            log.warning("marking the logs of pod %s/%s collected: %s",
                        meta.get("namespace"), meta["name"], err)
        finally:
            self._marking.discard(pod_source(pod))

    async def _follow(self, pod: dict, container: str, ref: LogRef) -> None:
        name, namespace = pod["metadata"]["name"], pod["metadata"].get("namespace") or ""
        try:
            masker = SecretMasker([
                *await pod_secret_values(self.cluster, pod),
                *await self._control_secret_values(pod),
            ])
            writer = self.store.writer(ref)
            if writer.state.finished(pod_source(pod)):
                return
            writer.begin_source(pod_source(pod), _attempt_banner(pod))
            while not writer.complete:
                stream = LineMaskingStream(masker)
                try:
                    async for chunk in self.cluster.pod_logs(
                        name, namespace, container=container, follow=True,
                        since_bytes=writer.source_offset,
                    ):
                        writer.append(*stream.feed(chunk))
                except errors.NotFound:
                    writer.append(*stream.flush())
                    writer.finish()
                    return
                except errors.BadRequest as err:
                    log.debug("log of %s/%s[%s] not ready: %s", namespace, name, container, err)
                    await asyncio.sleep(self.retry_delay)
                    continue
                except errors.ApiError as err:
                    log.warning("following %s/%s[%s]: %s", namespace, name, container, err)
                    await asyncio.sleep(self.retry_delay)
                    continue
                await self._finish_if_ended(writer, stream, name, namespace, container)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("log collection of %s/%s[%s] failed", namespace, name, container)

    async def _control_secret_values(self, pod: dict) -> list[bytes | str]:
        """The pod's tenant's integration and `${secrets}` values. A pod outside the places
        its claimed tenant may run in (its home, the workload namespaces it opened on this
        cluster) gets none: its annotation would otherwise pick whose values mask its log,
        an oracle for guessing them."""
        meta_namespace = meta_namespace_of_pod(pod)
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
        if namespace != meta_namespace or self.cluster_name != keys.CONTROL_CLUSTER_NAME:
            policy = await read_policy(self.control, tenant_of(meta_namespace),
                                       [self.cluster_name])
            if not policy.runs_in(self.cluster_name, namespace):
                log.warning("pod %s/%s of cluster %s claims namespace %s; its log is masked "
                            "with its own Secrets only", namespace, pod["metadata"].get("name"),
                            self.cluster_name, meta_namespace)
                return []
        return await control_secret_values(self.control, pod, meta_namespace)

    async def _finish_if_ended(
        self, writer: LogWriter, stream: LineMaskingStream, name: str, namespace: str,
        container: str,
    ) -> None:
        """After a stream ends: complete the log if the container ended, else follow again.

        A followed stream may end early (a dropped connection), so an ended container's log
        is read once more from the stored offset before it is marked complete.
        """
        try:
            current = await self.cluster.get(kinds.POD, name, namespace)
        except errors.NotFound:
            current = None
        except errors.ApiError as err:
            log.warning("reading pod %s/%s: %s", namespace, name, err)
            await asyncio.sleep(self.retry_delay)
            return
        if current is not None and not container_ended(current, container):
            await asyncio.sleep(self.retry_delay)
            return
        if current is not None:
            rest = LineMaskingStream(stream.masker)
            try:
                async for chunk in self.cluster.pod_logs(
                    name, namespace, container=container, since_bytes=writer.source_offset
                ):
                    writer.append(*rest.feed(chunk))
                stream = rest
            except errors.ApiError as err:
                log.debug("final read of %s/%s[%s]: %s", namespace, name, container, err)
                if rest.received:
                    stream = rest
        writer.append(*stream.flush())
        writer.finish()
