"""Container logs of the embedded cluster: files the node agent writes under its log dir."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from cyclone.api.common import FINISHED_POD_PHASES
from cyclone.kube import kinds
from cyclone.kube.errors import BadRequest, NotFound

NODE_LOG_DIR_ANNOTATION = "node.cyclone.dev/log-dir"
"""Annotation on a Node: the absolute directory under which its agent writes
`{namespace}/{pod}/{container}.log`."""

_CHUNK = 64 * 1024
GetObject = Callable[..., Awaitable[dict]]


def _container_status(pod: dict, container: str) -> dict | None:
    status = pod.get("status") or {}
    for entry in [*(status.get("initContainerStatuses") or []),
                  *(status.get("containerStatuses") or [])]:
        if entry.get("name") == container:
            return entry
    return None


def _terminated(pod: dict, container: str) -> bool:
    if (pod.get("status") or {}).get("phase") in FINISHED_POD_PHASES:
        return True
    entry = _container_status(pod, container) or {}
    return "terminated" in (entry.get("state") or {})


def _choose_container(pod: dict, container: str | None) -> str:
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    init_names = [c["name"] for c in spec.get("initContainers") or []]
    pod_name = pod["metadata"]["name"]
    if container is None:
        if len(names) == 1:
            return names[0]
        raise BadRequest(
            f"a container name must be specified for pod {pod_name}, choose one of: {names}"
        )
    if container not in names + init_names:
        raise BadRequest(f"container {container} is not valid for pod {pod_name}")
    return container


async def _log_path(get: GetObject, pod: dict, container: str) -> Path:
    pod_name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    entry = _container_status(pod, container) or {}
    waiting = (entry.get("state") or {}).get("waiting") or {}
    waiting_error = BadRequest(
        f'container "{container}" in pod "{pod_name}" is waiting to start: '
        f"{waiting.get('reason') or 'ContainerCreating'}"
    )
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise waiting_error
    try:
        node = await get(kinds.NODE, node_name)
    except NotFound as exc:
        raise waiting_error from exc
    log_dir = (node["metadata"].get("annotations") or {}).get(NODE_LOG_DIR_ANNOTATION)
    path = Path(log_dir or "/nonexistent") / namespace / pod_name / f"{container}.log"
    if not path.exists():
        raise waiting_error
    return path


async def read_pod_logs(
    get: GetObject,
    name: str,
    namespace: str,
    *,
    container: str | None,
    follow: bool,
    since_bytes: int,
    poll_interval: float = 0.1,
) -> AsyncIterator[bytes]:
    """Yield a container's log; with follow, until the container has ended and the file is
    drained, or the pod is gone."""
    pod = await get(kinds.POD, name, namespace)
    chosen = _choose_container(pod, container)
    if not (pod.get("spec") or {}).get("nodeName"):
        return  # not scheduled yet: no log, as the apiserver answers
    path = await _log_path(get, pod, chosen)
    with path.open("rb") as handle:
        handle.seek(since_bytes)
        while True:
            chunk = await asyncio.to_thread(handle.read, _CHUNK)
            if chunk:
                yield chunk
                continue
            if not follow:
                return
            try:
                pod = await get(kinds.POD, name, namespace)
            except NotFound:
                pod = None
            if pod is None or _terminated(pod, chosen):
                rest = await asyncio.to_thread(handle.read)
                if rest:
                    yield rest
                return
            await asyncio.sleep(poll_interval)
