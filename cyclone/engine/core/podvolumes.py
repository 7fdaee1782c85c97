"""Volumes of a stage pod: the run's data volume, results, and the run's preset volumes."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

from cyclone.engine.core.names import dns_label_part

DATA_VOLUME = "cyclone-data"
RESULTS_VOLUME = "cyclone-results"
PRESET_VOLUME_PREFIX = "cyclone-preset-"
PERSISTENT_VOLUME_PREFIX = "cyclone-persistent-"

GROUP_ALL = "All"
GROUP_SIDECAR = "Sidecar"
GROUP_WORKLOAD = "Workload"


def run_data_path(run: str) -> str:
    return f"workflowruns/{run}"


def resource_data_path(run: str, resource: str) -> str:
    return f"workflowruns/{run}/resources/{resource}"


def artifact_data_path(run: str, stage: str, artifact: str) -> str:
    return f"workflowruns/{run}/stages/{stage}/artifacts/{artifact}"


def data_volume(pvc: str | None) -> dict[str, Any]:
    """The tenant PVC, or an emptyDir when the run has none (data then lives with the pod)."""
    if pvc:
        return {"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": pvc}}
    return {"name": DATA_VOLUME, "emptyDir": {}}


def results_volume() -> dict[str, Any]:
    return {"name": RESULTS_VOLUME, "emptyDir": {}}


def persistent_volume_name(pvc: str) -> str:
    return (PERSISTENT_VOLUME_PREFIX + dns_label_part(pvc))[:63].rstrip("-")


def _value(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def preset_volumes(
    presets: Iterable[Any] | None, run_pvc: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The pod volumes of a run's ``spec.volumes`` and their mounts per container group.

    Returns ``(volumes, mounts)`` where ``mounts`` has the keys ``Workload`` and
    ``Sidecar``: ``All`` (the default) mounts into both the workload and every sidecar,
    ``Sidecar`` into sidecars only (user ``wsc-*`` and Cyclone ``csc-*``), ``Workload`` into
    the workload only. A PVC volume mounts ``path`` (joined with ``subPath``) of the claim
    ``objectName``, else of ``run_pvc`` (the run's tenant PVC, as Cyclone v1.2 did).
    """
    volumes: list[dict[str, Any]] = []
    mounts: dict[str, list[dict[str, Any]]] = {GROUP_WORKLOAD: [], GROUP_SIDECAR: []}
    for index, preset in enumerate(presets or ()):
        kind = _text(_value(preset, "type"))
        name = f"{PRESET_VOLUME_PREFIX}{index}"
        path = _text(_value(preset, "path"))
        object_name = _text(_value(preset, "objectName") or _value(preset, "object_name"))
        sub_path = _text(_value(preset, "subPath") or _value(preset, "sub_path"))
        if kind == "HostPath":
            volume = {"name": name, "hostPath": {"path": path or "/"}}
        elif kind == "PVC":
            claim = object_name or run_pvc
            if not claim:
                raise ValueError(f"spec.volumes[{index}]: a PVC volume without objectName "
                                 "mounts the run's PVC, and the run has none")
            volume = {"name": name, "persistentVolumeClaim": {"claimName": claim}}
            if path:
                sub_path = posixpath.join(path.strip("/"), sub_path or "").rstrip("/") or None
        elif kind == "Secret":
            volume = {"name": name, "secret": {"secretName": object_name}}
        elif kind == "ConfigMap":
            volume = {"name": name, "configMap": {"name": object_name}}
        else:
            raise ValueError(f"spec.volumes[{index}]: unknown volume type {kind!r}")
        volumes.append(volume)
        mount: dict[str, Any] = {
            "name": name,
            "mountPath": _text(_value(preset, "mountPath") or _value(preset, "mount_path")),
        }
        if sub_path:
            mount["subPath"] = sub_path
        group = _text(_value(preset, "containerGroup") or _value(preset, "container_group"))
        group = group or GROUP_ALL
        if group in (GROUP_ALL, GROUP_WORKLOAD):
            mounts[GROUP_WORKLOAD].append(dict(mount))
        if group in (GROUP_ALL, GROUP_SIDECAR):
            mounts[GROUP_SIDECAR].append(dict(mount))
    return volumes, mounts
