"""Acceleration caches: dependency caches on the tenant PVC, mounted into stage workloads.

A WorkflowRun labelled ``workflowrun.cyclone.dev/acceleration: "true"`` (exactly) mounts,
into the workload container of each of its pod stages, one folder per tool from the data
volume (the tenant PVC) at ``caches/{project}/{folder}``:

=========  =================
folder     mounted at
=========  =================
``m2``     ``/root/.m2``
``gradle`` ``/root/.gradle``
``npm``    ``/root/.npm``
``ivy2``   ``/root/.ivy2``
``cache``  ``/root/.cache``
=========  =================

Tools find these paths through ``~`` when the container runs as root with ``HOME=/root``.
A container that runs as another user, or whose runtime gives another ``HOME``, would not,
so the workload also gets the tools' own cache settings (``XDG_CACHE_HOME``,
``npm_config_cache``, ``GRADLE_USER_HOME``, ``MAVEN_OPTS``, ``SBT_OPTS``) pointing there,
each only when the container does not set it itself. For a root container they repeat the
tools' defaults.

The caches are mounted only while the tenant's cache usage is under a limit. The usage is
what the PVC watchdog last reported (``items.caches`` of the tenant Namespace annotation
``tenant.cyclone.dev/storage-usage``); the limit is an absolute size when configured, else a
fraction of the PVC's reported ``total``. A run over the limit runs without caches, and a
Warning Event on the run (reason ``AccelerationSkipped``) says why. Without a report yet,
caches are mounted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cyclone.api import keys
from cyclone.engine.core.events import warning_event
from cyclone.engine.core.gcpod import DEFAULT_GC_IMAGE, GC_MOUNT_PATH, pvc_maintenance_pod
from cyclone.engine.core.podvolumes import DATA_VOLUME

LABEL_ACCELERATION = keys.LABEL_ACCELERATION
CACHES_FOLDER = "caches"
"""The top-level folder of the tenant PVC holding every project's caches."""
CACHE_DIRS: tuple[tuple[str, str], ...] = (
    ("m2", "/root/.m2"),
    ("gradle", "/root/.gradle"),
    ("npm", "/root/.npm"),
    ("ivy2", "/root/.ivy2"),
    ("cache", "/root/.cache"),
)
"""(folder under ``caches/{project}``, mount path in the workload)."""
TOOL_ENV: tuple[tuple[str, str], ...] = (
    ("XDG_CACHE_HOME", "/root/.cache"),
    ("npm_config_cache", "/root/.npm"),
    ("GRADLE_USER_HOME", "/root/.gradle"),
    ("MAVEN_OPTS", "-Dmaven.repo.local=/root/.m2/repository"),
    ("SBT_OPTS", "-Dsbt.ivy.home=/root/.ivy2"),
)
DEFAULT_LIMIT_FRACTION = 0.5

_PROJECT_FOLDER = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$", re.IGNORECASE)


def is_accelerated(labels: Mapping[str, str] | None) -> bool:
    """Whether a run asks for caches: its acceleration label is exactly ``"true"``."""
    return (labels or {}).get(LABEL_ACCELERATION) == "true"


def project_cache_path(project: str) -> str:
    """The folder of a project's caches on the tenant PVC."""
    return f"{CACHES_FOLDER}/{project}"


def cache_mounts(project: str, taken: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The workload's cache mounts; a path the container already mounts keeps its own."""
    own = set(taken)
    return [
        {"name": DATA_VOLUME, "mountPath": path,
         "subPath": f"{project_cache_path(project)}/{folder}"}
        for folder, path in CACHE_DIRS if path not in own
    ]


def tool_env(given: Iterable[str] = ()) -> list[dict[str, str]]:
    """The tools' cache settings a container does not set itself."""
    own = set(given)
    return [{"name": name, "value": value} for name, value in TOOL_ENV if name not in own]


def parse_usage(raw: str | None) -> Mapping[str, Any] | None:
    """The watchdog's last report from the Namespace annotation, or None when unreadable."""
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    return usage if isinstance(usage, dict) else None


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def cache_limit(usage: Mapping[str, Any], limit_bytes: int | None,
                limit_fraction: float) -> int | None:
    """The bytes the caches may use: ``limit_bytes``, else ``limit_fraction`` of the reported
    total; None when neither gives a figure (no total reported)."""
    if limit_bytes is not None:
        return limit_bytes
    total = _size(usage.get("total"))
    return int(total * limit_fraction) if total else None


def cache_usage(usage: Mapping[str, Any]) -> int:
    items = usage.get("items")
    return _size(items.get(CACHES_FOLDER)) if isinstance(items, Mapping) else 0


@dataclass(frozen=True)
class CacheDecision:
    """Whether a run's stage pods mount the caches (then ``project`` names whose), and,
    when an accelerated run does not, why."""

    mount: bool
    project: str | None = None
    message: str | None = None


NO_CACHES = CacheDecision(False)


def _not_mounted(why: str) -> CacheDecision:
    return CacheDecision(False, message=f"acceleration caches not mounted: {why}")


def decide(labels: Mapping[str, str] | None, project: str | None, pvc: str | None,
           usage_annotation: str | None, *, limit_bytes: int | None = None,
           limit_fraction: float = DEFAULT_LIMIT_FRACTION) -> CacheDecision:
    """Whether a run gets its project's caches (see the module doc)."""
    if not is_accelerated(labels):
        return NO_CACHES
    if not project or not _PROJECT_FOLDER.match(project):
        return _not_mounted("the run belongs to no project")
    if not pvc:
        return _not_mounted("the run has no tenant PVC")
    usage = parse_usage(usage_annotation)
    if usage is not None:
        limit = cache_limit(usage, limit_bytes, limit_fraction)
        used = cache_usage(usage)
        if limit is not None and used >= limit:
            return _not_mounted(f"the caches use {used} bytes, at or over the limit of "
                                f"{limit} bytes (clean them with cleancachetasks)")
    return CacheDecision(True, project)


CLEAN_POD_PREFIX = "cachegc--"
CLEAN_MOUNT_PATH = GC_MOUNT_PATH


def clean_cache_pod_name(project: str) -> str:
    return f"{CLEAN_POD_PREFIX}{project}"


def clean_cache_command(project: str) -> list[str]:
    """Empty ``caches/{project}`` (the folder stays, so running stages keep their mounts).
    A pattern that matches nothing stays as it is, which ``rm -f`` ignores: only a real
    failure fails the pod."""
    target = f"{CLEAN_MOUNT_PATH}/{project_cache_path(project)}"
    return ["sh", "-c", f'rm -rf "{target}"/* "{target}"/.[!.]* "{target}"/..?*']


def build_clean_cache_pod(project: str, tenant: str, namespace: str, pvc: str, *,
                          image: str = DEFAULT_GC_IMAGE,
                          resources: Mapping[str, Any] | None = None,
                          service_account: str | None = None) -> dict[str, Any]:
    """The GC-style pod ``cachegc--{project}`` that empties the project's caches on ``pvc``
    (`gcpod.pvc_maintenance_pod`, with the image, resources and service account GC pods
    have)."""
    if not _PROJECT_FOLDER.match(project):
        raise ValueError(f"project {project!r} is not a valid folder name")
    labels = {
        keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE,
        keys.LABEL_POD_KIND: keys.POD_KIND_GC,
        keys.LABEL_PROJECT: project,
        keys.LABEL_TENANT: tenant,
    }
    return pvc_maintenance_pod(
        clean_cache_pod_name(project), namespace, pvc, "csc-clean-cache",
        clean_cache_command(project), labels, image=image, resources=resources,
        service_account=service_account)


REASON_ACCELERATION_SKIPPED = "AccelerationSkipped"


def skipped_event(run: Mapping[str, Any], message: str, now: str) -> dict[str, Any]:
    """The Warning Event on an accelerated run that got no caches; one per run (by name)."""
    meta = run.get("metadata") or {}
    return warning_event(
        {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun", **run},
        f"{meta.get('name')}.{meta.get('uid') or 'run'}.caches",
        REASON_ACCELERATION_SKIPPED, message, now)
