"""What the project and workflow pages show, computed from plain objects: run summaries, cron
fire times, webhook URLs, and the "Run" form (its fields and the run body it submits).

Pure functions: the page routes read the objects and hand them over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import yaml

from cyclone.api import keys
from cyclone.api.common import resource_item_name
from cyclone.engine.core.cron import CronError, parse_schedule
from cyclone.engine.core.phases import SUCCEEDED, TERMINAL_PHASES
from cyclone.engine.core.scm.matching import PARAM_REVISION, integration_of, webhook_url
from cyclone.server.objects import strip_server_metadata
from cyclone.ui.dag_view import workflow_graph
from cyclone.ui.durations import run_seconds, run_start
from cyclone.ui.layout import layout_dag
from cyclone.ui.run_index import summarize
from cyclone.ui.run_summary import run_phase
from cyclone.ui.sparkline import RunPoint, sparkline
from cyclone.ui.urls import workflow_url

PARAM_REPO = "SCM_REPO"
HISTORY_ROWS = 50
"""Runs listed in the workflow page's table; the runs list pages through the rest."""
SPARK_RUNS = 30


def created(obj: Mapping) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def newest_first(runs: Iterable[Mapping]) -> list[Mapping]:
    """Runs in the run index's order (`RunSummary.order`: creation time, then name, so runs
    of the same second keep one order on every page), newest first."""
    return sorted(runs, key=lambda run: summarize(dict(run)).order, reverse=True)


def run_points(runs_newest_first: Sequence[Mapping], now: datetime | None = None
               ) -> list[RunPoint]:
    """The sparkline's points, oldest first."""
    return [RunPoint(r["metadata"]["name"], run_phase(r), run_seconds(r, now))
            for r in reversed(runs_newest_first)]


@dataclass(frozen=True)
class SuccessRate:
    succeeded: int
    finished: int

    @property
    def text(self) -> str:
        return f"{self.succeeded}/{self.finished}" if self.finished else "-"


def success_of_last(phases_newest_first: Iterable[str], count: int = 10) -> SuccessRate:
    """Succeeded out of the last `count` finished runs, given the runs' phases."""
    finished = [p for p in phases_newest_first if p in TERMINAL_PHASES][:count]
    return SuccessRate(sum(p == SUCCEEDED for p in finished), len(finished))


def group_by_label(objects: Iterable[Mapping], label: str) -> dict[str, list[Mapping]]:
    groups: dict[str, list[Mapping]] = {}
    for obj in objects:
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
        if value:
            groups.setdefault(value, []).append(obj)
    return groups


def description(obj: Mapping) -> str:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(
        keys.ANNOTATION_DESCRIPTION, "")


@dataclass(frozen=True)
class FireTimes:
    zone: str
    times: tuple[datetime, ...] = ()
    """UTC."""
    local: tuple[str, ...] = ()
    """The same times in the schedule's zone, as text."""
    problem: str = ""


def next_fires(trigger: Mapping, now: datetime, count: int = 3) -> FireTimes:
    """The next `count` times a cron trigger fires after `now`, or why it does not."""
    spec = trigger.get("spec") or {}
    cron = spec.get("cron") or {}
    zone = cron.get("timezone") or "UTC"
    if spec.get("type") != "Cron":
        return FireTimes(zone, problem="not a cron trigger")
    if spec.get("disabled"):
        return FireTimes(zone, problem="disabled")
    try:
        schedule = parse_schedule(str(cron.get("schedule") or ""), cron.get("timezone"))
    except CronError as exc:
        return FireTimes(zone, problem=str(exc))
    times: list[datetime] = []
    moment = now.astimezone(UTC)
    for _ in range(count):
        moment = schedule.next_after(moment)
        times.append(moment)
    local_zone = schedule.zone or UTC
    local = tuple(t.astimezone(local_zone).strftime("%Y-%m-%d %H:%M:%S %Z") for t in times)
    return FireTimes(zone, tuple(times), local)


def trigger_webhook_url(trigger: Mapping, base_url: str, namespace: str) -> str | None:
    """The URL an SCM trigger's events are posted to (its integration's), None for other
    triggers or one that names no integration."""
    spec = trigger.get("spec") or {}
    if spec.get("type") != "SCM":
        return None
    integration = integration_of(dict(trigger))
    return webhook_url(base_url, namespace, integration) if integration else None


def yaml_of(obj: Mapping) -> str:
    """The object as a user would apply it: server-owned metadata and status left out."""
    shown = {k: v for k, v in obj.items() if k != "status"}
    meta = strip_server_metadata(dict(obj.get("metadata") or {}))
    shown["metadata"] = {k: v for k, v in meta.items() if v not in ({}, [], None)}
    return yaml.safe_dump(shown, sort_keys=False, default_flow_style=False, allow_unicode=True)


# The "Run" form

@dataclass(frozen=True)
class FormField:
    key: str
    """The form field's name."""
    name: str
    default: str = ""
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class StageFields:
    stage: str
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class GitInput:
    """A Git resource a stage pulls: the run may pick its revision."""

    key: str
    resource: str
    repo: str
    default: str
    integration: str


@dataclass(frozen=True)
class RunForm:
    stages: tuple[StageFields, ...] = ()
    variables: tuple[FormField, ...] = ()
    git: tuple[GitInput, ...] = ()


@dataclass
class RunRequest:
    """What the submitted form asks for: a run body, or the problems to show."""

    body: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)


ALIAS_FIELD = "alias"


def _param_key(stage: str, name: str) -> str:
    return f"p:{stage}:{name}"


def _items(value: object) -> list[dict]:
    return [i for i in value if isinstance(i, dict) and i.get("name")] \
        if isinstance(value, list) else []


def _pod_inputs(stage: Mapping | None) -> dict:
    pod = ((stage or {}).get("spec") or {}).get("pod") or {}
    return pod.get("inputs") or {} if isinstance(pod, dict) else {}


def run_form(workflow: Mapping, stages: Mapping[str, Mapping], resources: Mapping[str, Mapping],
             scm_integration: str = "") -> RunForm:
    """The form of a run of `workflow`: each stage's arguments (from its Stage's
    `spec.pod.inputs.arguments`, default values filled), the workflow's global variables,
    and a revision field for each Git resource a stage pulls."""
    spec = workflow.get("spec") or {}
    stage_fields = []
    git: dict[str, GitInput] = {}
    for item in _items(spec.get("stages")):
        name = str(item["name"])
        inputs = _pod_inputs(stages.get(name))
        fields = tuple(FormField(_param_key(name, str(a["name"])), str(a["name"]),
                                 str(a.get("value") or ""), str(a.get("description") or ""),
                                 bool(a.get("required")))
                       for a in _items(inputs.get("arguments")))
        if fields:
            stage_fields.append(StageFields(name, fields))
        for used in _items([{**r, "name": resource_item_name(r)}
                            for r in inputs.get("resources") or [] if isinstance(r, dict)]):
            used_name = str(used["name"])
            resource = resources.get(used_name) or {}
            rspec = resource.get("spec") or {}
            if rspec.get("type") != "Git" or used_name in git:
                continue
            params = {str(p["name"]): str(p.get("value") or "")
                      for p in _items(rspec.get("parameters"))}
            git[used_name] = GitInput(f"r:{used_name}", used_name,
                                      params.get(PARAM_REPO, ""),
                                      params.get(PARAM_REVISION, ""), scm_integration)
    variables = tuple(FormField(f"v:{v['name']}", str(v["name"]), str(v.get("value") or ""))
                      for v in _items(spec.get("globalVariables")))
    return RunForm(tuple(stage_fields), variables, tuple(git.values()))


def run_request(form: RunForm, submitted: Mapping[str, str]) -> RunRequest:
    """The run body of a submitted form: only values that differ from their defaults are
    sent (the engine fills the rest), a required argument left empty is a problem."""
    values = {k: str(v) for k, v in submitted.items()}
    problems: list[str] = []
    spec: dict = {}
    stage_params = []
    for stage in form.stages:
        params = []
        for f in stage.fields:
            value = values.get(f.key, f.default)
            if f.required and not value.strip():
                problems.append(f"stage {stage.stage}: parameter {f.name} is required")
            elif value != f.default:
                params.append({"name": f.name, "value": value})
        if params:
            stage_params.append({"name": stage.stage, "parameters": params})
    if stage_params:
        spec["stages"] = stage_params
    variables = [{"name": f.name, "value": values[f.key]} for f in form.variables
                 if f.key in values and values[f.key] != f.default]
    if variables:
        spec["globalVariables"] = variables
    revisions = [{"name": g.resource, "parameters": [{"name": PARAM_REVISION,
                                                       "value": values[g.key].strip()}]}
                 for g in form.git if values.get(g.key, "").strip()
                 and values[g.key].strip() != g.default]
    if revisions:
        spec["resources"] = revisions
    alias = values.get(ALIAS_FIELD, "").strip()
    metadata = {"annotations": {keys.ANNOTATION_ALIAS: alias}} if alias else {}
    return RunRequest({"metadata": metadata, "spec": spec}, problems, values)


def page_context(project: str, workflow: Mapping, runs: Iterable[Mapping],
                 triggers: Iterable[Mapping], stages: Mapping[str, Mapping], form: RunForm,
                 *, base_url: str, namespace: str, now: datetime,
                 run_count: int | None = None, success: SuccessRate | None = None) -> dict:
    """What workflow.html shows of a workflow, its newest runs (`run_count` runs in all,
    `success` over all of them; both default to what `runs` says), triggers (already
    masked) and Stages."""
    name = str(workflow["metadata"]["name"])
    ordered = newest_first(runs)
    names, edges = workflow_graph(workflow)
    trigger_rows = [{"trigger": t, "fires": next_fires(t, now),
                     "webhook": trigger_webhook_url(t, base_url, namespace)}
                    for t in sorted(triggers, key=lambda t: t["metadata"]["name"])]
    return {
        "project": project, "workflow": workflow, "name": name,
        "url": workflow_url(project, name),
        "layout": layout_dag(names, edges),
        "stage_href": lambda stage: f"#stage-{stage}",
        "spark": sparkline(run_points(ordered[:SPARK_RUNS], now)),
        "runs": ordered[:HISTORY_ROWS],
        "run_count": len(ordered) if run_count is None else run_count,
        "success": success or success_of_last(run_phase(r) for r in ordered),
        "triggers": trigger_rows,
        "workflow_yaml": yaml_of(workflow),
        "stage_yaml": [(n, yaml_of(stages[n])) for n in names if n in stages],
        "missing_stages": [n for n in names if n not in stages],
        "form": form, "values": {}, "problems": [],
        "run_seconds": lambda run: run_seconds(run, now),
        "run_phase": run_phase, "run_start": run_start,
    }
