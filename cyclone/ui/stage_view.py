"""What the stage panel shows, from the objects as they are: the stage's containers and their
states, its inputs and outputs, the Events about it and its pod as YAML with every secret
value hidden. Pure functions: the page module reads the objects.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from cyclone.api.common import resource_item_name
from cyclone.engine.core.masking import MASK, Masker
from cyclone.engine.core.phases import TERMINAL_PHASES
from cyclone.engine.core.tokens import is_upload_token
from cyclone.server.logs.routes import is_sidecar
from cyclone.ui.dag_view import stage_phase
from cyclone.ui.run_summary import run_phase

SECRET_REFERENCE = "${secrets."


@dataclass(frozen=True)
class ContainerRow:
    name: str
    image: str
    state: str
    """waiting, running, terminated, or unknown (no status, e.g. the pod is gone)."""
    exit_code: int | None
    reason: str
    started: str | None
    finished: str | None
    init: bool
    sidecar: bool
    logged: bool
    """Its log is stored."""


def stage_entry(run: dict, stage: str) -> dict | None:
    """The run status's entry of a stage, or None when the run has none."""
    entry = ((run.get("status") or {}).get("stages") or {}).get(stage)
    return entry if isinstance(entry, dict) else None


def _stage_names(obj: dict | None) -> set[str]:
    stages = ((obj or {}).get("spec") or {}).get("stages") or []
    return {s.get("name") for s in stages if isinstance(s, dict) and s.get("name")}


def stage_of_run(run: dict, workflow: dict | None, stage: str) -> bool:
    """Whether `stage` is one of the run's: an entry of its status, a stage of its spec,
    or, while the run has no stage entries yet (a busy engine may keep a run's first
    status back for a moment, and a large run's entries are in its chunks), a stage of
    its workflow."""
    if stage_entry(run, stage) is not None or stage in _stage_names(run):
        return True
    return not (run.get("status") or {}).get("stages") and stage in _stage_names(workflow)


def stage_live(entry: dict | None, run: dict) -> bool:
    """Whether the stage's log may still grow: it has not ended and its run goes on."""
    return stage_phase(entry) not in TERMINAL_PHASES and run_phase(run) not in TERMINAL_PHASES


def log_is_live(entry: dict | None, run: dict, log_complete: bool | None) -> bool:
    """Whether the viewer follows the log's live stream rather than reading it once: while
    the stage runs, and after it ended until the collector has stored the log whole
    (`log_complete` False). None: the stage has no container whose log could come."""
    return stage_live(entry, run) or log_complete is False


def _state_of(status: dict | None) -> tuple[str, int | None, str, str | None, str | None]:
    state = (status or {}).get("state") or {}
    if "terminated" in state:
        done = state["terminated"] or {}
        return ("terminated", done.get("exitCode"), str(done.get("reason") or ""),
                done.get("startedAt"), done.get("finishedAt"))
    if "running" in state:
        return "running", None, "", (state["running"] or {}).get("startedAt"), None
    if "waiting" in state:
        return "waiting", None, str((state["waiting"] or {}).get("reason") or ""), None, None
    return "unknown", None, "", None, None


def container_rows(pod: dict | None, stored: Iterable[str]) -> list[ContainerRow]:
    """Every container of the pod (init containers first) with its state, then any container
    whose log is stored but that the pod (gone, say) does not name."""
    stored = list(stored)
    spec = (pod or {}).get("spec") or {}
    status = (pod or {}).get("status") or {}
    statuses = {s.get("name"): s for key in ("initContainerStatuses", "containerStatuses")
                for s in status.get(key) or [] if isinstance(s, dict)}
    rows: list[ContainerRow] = []
    for init, key in ((True, "initContainers"), (False, "containers")):
        for container in spec.get(key) or []:
            name = str(container.get("name") or "")
            state, code, reason, started, finished = _state_of(statuses.get(name))
            rows.append(ContainerRow(name, str(container.get("image") or ""), state, code,
                                     reason, started, finished, init, is_sidecar(name),
                                     name in stored))
    named = {row.name for row in rows}
    rows.extend(ContainerRow(name, "", "unknown", None, "", None, None, False,
                             is_sidecar(name), True)
                for name in stored if name not in named)
    return rows


def default_container(rows: Sequence[ContainerRow], wanted: str | None) -> str | None:
    """The container whose log is shown first: the one asked for, else the workload's."""
    names = [row.name for row in rows]
    if wanted and wanted in names:
        return wanted
    for candidates in ([r for r in rows if r.logged and not r.sidecar and not r.init],
                       [r for r in rows if not r.sidecar and not r.init],
                       [r for r in rows if r.logged]):
        if candidates:
            return candidates[0].name
    return None


def _named(items: Any) -> list[dict[str, Any]]:
    return [item for item in items or [] if isinstance(item, dict) and item.get("name")]


def stage_inputs(stage_obj: dict | None, run: dict, workflow: dict | None = None
                 ) -> dict[str, list[dict[str, Any]]]:
    """The stage's input resources and arguments, and the global variables of the run: the
    workflow's, each overridden by the run's of the same name."""
    pod = (((stage_obj or {}).get("spec") or {}).get("pod") or {})
    inputs = pod.get("inputs") or {}
    merged = {g["name"]: g for g in _named(((workflow or {}).get("spec") or {})
                                           .get("globalVariables"))}
    merged.update({g["name"]: g for g in _named((run.get("spec") or {})
                                                .get("globalVariables"))})
    return {
        "resources": _named([{**r, "name": resource_item_name(r)}
                             for r in inputs.get("resources") or [] if isinstance(r, dict)]),
        "arguments": _named(inputs.get("arguments")),
        "globals": list(merged.values()),
    }


def stage_events(events: Iterable[dict], stage: str, pod_name: str | None) -> list[dict]:
    """Events about the stage's pod, and the run's Events that name the stage."""
    found = []
    for event in events:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") == "Pod" and pod_name and involved.get("name") == pod_name:
            found.append(event)
        elif involved.get("kind") == "WorkflowRun" and stage in str(event.get("message") or ""):
            found.append(event)
    return found


def _secret_env_names(stage_obj: dict | None) -> set[str]:
    """Env vars the Stage fills from `${secrets…}`: the engine renders their values in."""
    spec = ((((stage_obj or {}).get("spec") or {}).get("pod") or {}).get("spec") or {})
    return {str(env.get("name")) for key in ("initContainers", "containers")
            for container in spec.get(key) or [] for env in container.get("env") or []
            if isinstance(env, dict) and SECRET_REFERENCE in str(env.get("value") or "")}


def _hide_secret_env(pod_spec: dict, names: set[str]) -> None:
    """Mask the env vars named, and any holding the run's artifact upload token (the
    engine gives it to Http resolvers; it lets its holder write to the run)."""
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            for env in container.get("env") or []:
                if not isinstance(env, dict) or "value" not in env:
                    continue
                if env.get("name") in names or is_upload_token(str(env.get("value") or "")):
                    env["value"] = MASK


def pod_yaml(pod: dict, masker: Masker, stage_obj: dict | None = None) -> str:
    """The pod as the engine built it (metadata and spec, no status) as YAML, with every
    secret value it carries replaced by `***`: the values of the Secrets it reads or that
    its stage names and the tenant's integration credentials (`masker`), any env var the
    Stage fills from `${secrets…}`, and the run's artifact upload token."""
    meta = pod.get("metadata") or {}
    shown = {
        "apiVersion": pod.get("apiVersion", "v1"),
        "kind": pod.get("kind", "Pod"),
        "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations")
                     if k in meta},
        "spec": copy.deepcopy(pod.get("spec") or {}),
    }
    _hide_secret_env(shown["spec"], _secret_env_names(stage_obj))
    text = yaml.safe_dump(masker.mask_strings(shown), sort_keys=False, default_flow_style=False,
                          width=100, allow_unicode=True)
    return masker.mask_text(text)
