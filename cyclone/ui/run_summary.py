"""What the run page's header says about a run — its phase as a person reads it, what
started it, the commit it built, its parameters — and which actions fit its phase.

Pure functions of the run object: the page and its tests share them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from cyclone.api import keys
from cyclone.api.common import REASON_MANUALLY_PAUSE
from cyclone.engine.core.phases import PENDING, RUNNING, SUCCEEDED, TERMINAL_PHASES
from cyclone.engine.core.scm.matching import PARAM_REVISION
from cyclone.engine.core.triggerrun import LABEL_TRIGGER, TRIGGER_CRON
from cyclone.ui.dag_view import NodeInfo
from cyclone.ui.templating import parse_time

PAUSED = "Paused"
COMMIT_OUTPUT = "LastCommitID"
"""The output the Git and Svn resolvers write: the commit they checked out."""


@dataclass(frozen=True)
class Trigger:
    kind: str
    """`manual`, `cron` or `webhook` (or the raw trigger annotation of another starter)."""
    text: str
    """What a person reads: "manual", "cron trigger nightly", "scm-push to main"."""
    by: str = ""
    """The trigger object that started it, when one did."""
    event: dict = field(default_factory=dict)
    """The SCM event of a webhook run (provider, repo, branch, tag, commit, pullRequest…)."""


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    confirm: str
    danger: bool = False


def run_phase(run: Mapping[str, Any]) -> str:
    """The phase a person reads: `Paused` for a running run the engine holds paused,
    `Pending` before the engine gave it one. Every page shows a run's phase by this rule."""
    overall = (run.get("status") or {}).get("overall") or {}
    phase = overall.get("phase") or PENDING
    if phase == RUNNING and overall.get("reason") == REASON_MANUALLY_PAUSE:
        return PAUSED
    return phase


def _meta(run: dict) -> tuple[dict, dict]:
    meta = run.get("metadata") or {}
    return meta.get("annotations") or {}, meta.get("labels") or {}


def scm_event(run: dict) -> dict:
    """The SCM event a webhook run records, or {} (also for an unreadable annotation)."""
    raw = _meta(run)[0].get(keys.ANNOTATION_SCM_EVENT)
    if not raw:
        return {}
    try:
        event = json.loads(raw)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def trigger_of(run: dict) -> Trigger:
    annotations, labels = _meta(run)
    kind = annotations.get(keys.ANNOTATION_WORKFLOWRUN_TRIGGER, "")
    by = labels.get(LABEL_TRIGGER, "")
    if not kind:
        return Trigger("manual", "manual", by)
    if kind == TRIGGER_CRON:
        return Trigger("cron", f"cron trigger {by}" if by else "cron", by)
    event = scm_event(run)
    if kind.startswith("scm-") or event:
        where = event.get("tag") or event.get("branch") or ""
        text = kind + (f" to {where}" if where else "")
        if event.get("pullRequest") or event.get("pull_request"):
            text += f" (pull request #{event.get('pullRequest') or event.get('pull_request')})"
        if event.get("repo"):
            text += f" of {event['repo']}"
        return Trigger("webhook", text, by, event)
    return Trigger(kind, kind, by)


def started_by(run: dict) -> str:
    """Who or what started the run, from the labels and annotations its starter set."""
    trigger = trigger_of(run)
    retry_of = (run.get("spec") or {}).get("retryOf")
    parts = []
    if trigger.by:
        parts.append(f"trigger {trigger.by}")
    elif trigger.kind == "manual":
        parts.append(_meta(run)[0].get(keys.ANNOTATION_STARTED_BY) or "a user (API, CLI or UI)")
    provider = trigger.event.get("provider")
    if provider:
        parts.append(f"{provider} webhook")
    if retry_of:
        parts.append(f"retry of {retry_of}")
    return ", ".join(parts) or trigger.text


def commit_of(run: dict) -> str:
    """The commit the run built: a resolver's `LastCommitID` output, else the SCM event's
    commit or revision, else the `SCM_REVISION` a Git resource was given."""
    for status in ((run.get("status") or {}).get("stages") or {}).values():
        for output in (status or {}).get("outputs") or []:
            if output.get("key") == COMMIT_OUTPUT and output.get("value"):
                return str(output["value"])
    event = scm_event(run)
    if event.get("commit") or event.get("revision"):
        return str(event.get("commit") or event.get("revision"))
    for resource in (run.get("spec") or {}).get("resources") or []:
        for parameter in resource.get("parameters") or []:
            if parameter.get("name") == PARAM_REVISION and parameter.get("value"):
                return str(parameter["value"])
    return ""


def parameters_of(run: dict) -> list[tuple[str, str, str]]:
    """(stage or resource, parameter, value) of every parameter the run was given."""
    spec = run.get("spec") or {}
    rows = []
    for group in ("resources", "stages"):
        for item in spec.get(group) or []:
            for parameter in item.get("parameters") or []:
                rows.append((str(item.get("name") or ""), str(parameter.get("name") or ""),
                             "" if parameter.get("value") is None else str(parameter["value"])))
    return rows


def variables_of(run: dict) -> list[tuple[str, str]]:
    return [(str(v.get("name") or ""), "" if v.get("value") is None else str(v["value"]))
            for v in (run.get("spec") or {}).get("globalVariables") or []]


STOP = Action("stop", "Stop", "Stop this run? Its running stages are terminated.", True)
PAUSE = Action("pause", "Pause", "Pause this run? No new stage starts until it is resumed.")
RESUME = Action("resume", "Resume", "Resume this run?")
RETRY = Action("retry", "Retry failed", "Start a new run that reuses this run's succeeded "
               "stages and runs the rest again?")
RERUN = Action("rerun", "Rerun", "Start a new run that runs every stage again?")
DELETE = Action("delete", "Delete", "Delete this run with its logs and artifacts? This "
                "cannot be undone.", True)
ACTIONS = {a.name: a for a in (STOP, PAUSE, RESUME, RETRY, RERUN, DELETE)}


def actions_for(run: dict) -> list[Action]:
    """The actions that make sense now: stop/pause/resume while the run goes on,
    retry when it did not succeed, rerun once it ended, delete always."""
    phase = run_phase(run)
    spec = run.get("spec") or {}
    if phase in TERMINAL_PHASES:
        found = [RETRY] if phase != SUCCEEDED else []
        return [*found, RERUN, DELETE]
    if spec.get("stopped"):
        return [DELETE]
    return [STOP, RESUME if spec.get("paused") else PAUSE, DELETE]


@dataclass(frozen=True)
class StageRow:
    """One row of the stage table, every cell ready to print (a 2,000-stage run has 12,000
    cells: no filter runs per cell)."""

    name: str
    phase: str
    attempt: str
    started: str
    """RFC 3339 in UTC, for `<time datetime>`; empty when not started."""
    started_text: str
    duration: str
    message: str


def stage_rows(order: Sequence[str], info: Mapping[str, NodeInfo]) -> list[StageRow]:
    rows = []
    for name in order:
        node = info.get(name) or NodeInfo()
        began = parse_time(node.started)
        utc = began.astimezone(UTC) if began else None
        rows.append(StageRow(
            name, node.phase, str(node.attempt) if node.attempt else "",
            utc.isoformat().replace("+00:00", "Z") if utc else "",
            utc.strftime("%Y-%m-%d %H:%M:%S UTC") if utc else "", node.duration, node.message))
    return rows
