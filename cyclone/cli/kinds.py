"""The kinds the CLI knows: their names, short names, REST paths and table columns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from cyclone.api import keys
from cyclone.api.phases import REASON_MANUALLY_PAUSE, Phase
from cyclone.cli.errors import CliError
from cyclone.cli.trigger_columns import count_column, next_fire_column

if TYPE_CHECKING:
    from cyclone.cli.client import CycloneClient

Scope = Literal["global", "tenant", "project", "workflow"]
Column = tuple[str, Callable[[dict], str]]
TimedColumn = tuple[str, Callable[[dict, datetime], str]]
PAUSED = "Paused"


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _label(key: str) -> Callable[[dict], str]:
    return lambda obj: (_meta(obj).get("labels") or {}).get(key, "")


def _field(name: str) -> Callable[[dict], str]:
    return lambda obj: "" if obj.get(name) is None else str(obj.get(name))


def _spec(path: str) -> Callable[[dict], str]:
    def read(obj: dict) -> str:
        node: object = obj.get("spec") or {}
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return "" if node is None else str(node)
    return read


def run_phase(obj: dict) -> str:
    return ((obj.get("status") or {}).get("overall") or {}).get("phase") or Phase.PENDING.value


def run_display_phase(obj: dict) -> str:
    """The phase a person reads: `Paused` for a running run the engine holds paused."""
    overall = (obj.get("status") or {}).get("overall") or {}
    phase = overall.get("phase") or Phase.PENDING.value
    if phase == Phase.RUNNING and overall.get("reason") == REASON_MANUALLY_PAUSE:
        return PAUSED
    return phase


RUN_PHASES = (*(p.value for p in Phase), PAUSED)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds}s" if minutes < 10 and seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes and hours < 10 else f"{hours}h"
    return f"{hours // 24}d"


def run_times(obj: dict) -> tuple[datetime | None, datetime | None]:
    """When the run started and, once it ended, when it finished."""
    status = obj.get("status") or {}
    overall = status.get("overall") or {}
    started = parse_time(overall.get("startTime"))
    finished = None
    if overall.get("phase") in {p.value for p in Phase if p.terminal}:
        finished = parse_time(status.get("completionTime")) or parse_time(
            overall.get("lastTransitionTime"))
    return started, finished


def run_duration(obj: dict, now: datetime | None = None) -> str:
    started, finished = run_times(obj)
    if started is None:
        return ""
    return human_duration(((finished or now or datetime.now(UTC)) - started).total_seconds())


def run_message(obj: dict) -> str:
    overall = (obj.get("status") or {}).get("overall") or {}
    return overall.get("message") or overall.get("reason") or ""


def iso_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def _run_trigger(obj: dict) -> str:
    return (_meta(obj).get("annotations") or {}).get(keys.ANNOTATION_WORKFLOWRUN_TRIGGER, "")


def _stage_type(obj: dict) -> str:
    spec = obj.get("spec") or {}
    return "Delegation" if spec.get("delegation") else "Pod"


def _stage_count(obj: dict) -> str:
    return str(len((obj.get("spec") or {}).get("stages") or []))


def _integration_type(obj: dict) -> str:
    return (obj.get("spec") or {}).get("type", "")


@dataclass(frozen=True)
class CliKind:
    kind: str
    plural: str
    aliases: tuple[str, ...]
    scope: Scope
    collection: str
    columns: tuple[Column, ...] = field(default_factory=tuple)
    after_age: tuple[TimedColumn, ...] = field(default_factory=tuple)
    wide: tuple[TimedColumn, ...] = field(default_factory=tuple)
    message: Callable[[dict], str] | None = None
    phase: Callable[[dict], str] | None = None

    def table_columns(self, *, wide: bool = False) -> list[TimedColumn]:
        """NAME, the kind's columns, AGE, then timing, wide-only and MESSAGE columns."""
        def untimed(read: Callable[[dict], str]) -> Callable[[dict, datetime], str]:
            return lambda obj, _now: read(obj)

        columns: list[TimedColumn] = [("NAME", untimed(lambda o: _meta(o).get("name", "")))]
        columns += [(header, untimed(read)) for header, read in self.columns]
        columns.append(("AGE", age))
        columns += self.after_age
        if wide:
            columns += self.wide
        if self.message is not None:
            columns.append(("MESSAGE", untimed(self.message)))
        return columns

    def squeezable(self, *, wide: bool = False) -> bool:
        """Whether the last column is free text that may be shortened on a terminal."""
        return self.message is not None

    def path(self, project: str | None = None, workflow: str | None = None,
             name: str | None = None) -> str:
        if self.scope in ("project", "workflow") and not project:
            raise CliError(f"{self.plural} live in a project: pass --project")
        if self.scope == "workflow" and not workflow:
            raise CliError(f"{self.plural} belong to a workflow: pass --workflow")
        base = self.collection.format(project=project, workflow=workflow)
        return f"{base}/{name}" if name else base


def time_since(timestamp: str | None, now: datetime) -> str:
    """How long before `now` `timestamp` was, as `human_duration` says it; empty without one."""
    moment = parse_time(timestamp)
    return human_duration((now - moment).total_seconds()) if moment else ""


def age(obj: dict, now: datetime) -> str:
    return time_since(_meta(obj).get("creationTimestamp"), now)


_PROJECT_COL: Column = ("PROJECT", _label(keys.LABEL_PROJECT))
_WORKFLOW_COL: Column = ("WORKFLOW", _label(keys.LABEL_WORKFLOW))

KINDS: tuple[CliKind, ...] = (
    CliKind("Project", "projects", ("project", "proj"), "global", "/projects"),
    CliKind("Resource", "resources", ("resource", "rsc"), "project",
            "/projects/{project}/resources", (_PROJECT_COL, ("TYPE", _spec("type")))),
    CliKind("Stage", "stages", ("stage", "stg"), "project", "/projects/{project}/stages",
            (_PROJECT_COL, ("TYPE", _stage_type))),
    CliKind("Workflow", "workflows", ("workflow", "wf"), "project",
            "/projects/{project}/workflows", (_PROJECT_COL, ("STAGES", _stage_count))),
    CliKind("WorkflowRun", "workflowruns", ("workflowrun", "wfr", "runs", "run"), "workflow",
            "/projects/{project}/workflows/{workflow}/workflowruns",
            (_PROJECT_COL, _WORKFLOW_COL, ("PHASE", run_display_phase)),
            after_age=(("DURATION", run_duration),),
            wide=(("STARTED", lambda o, _now: iso_time(run_times(o)[0])),
                  ("FINISHED", lambda o, _now: iso_time(run_times(o)[1])),
                  ("TRIGGER", lambda o, _now: _run_trigger(o))),
            message=run_message, phase=run_display_phase),
    CliKind("WorkflowTrigger", "workflowtriggers",
            ("workflowtrigger", "wft", "triggers", "trigger"), "workflow",
            "/projects/{project}/workflows/{workflow}/workflowtriggers",
            (_PROJECT_COL, _WORKFLOW_COL, ("TYPE", _spec("type")),
             ("DISABLED", _spec("disabled")), ("NEXT FIRE", next_fire_column),
             ("COUNT", count_column))),
    CliKind("StageTemplate", "templates", ("template", "stagetemplates", "stagetemplate"),
            "global", "/templates", (("TYPE", _stage_type),)),
    CliKind("ResourceType", "resourcetypes", ("resourcetype",), "global", "/resourcetypes",
            (("TYPE", _spec("type")),)),
    CliKind("Tenant", "tenants", ("tenant",), "global", "/tenants"),
    CliKind("WorkingPod", "workingpods", ("workingpod",), "global", "/workingpods",
            tuple((header, _field(name)) for header, name in (
                ("TENANT", "tenant"), ("PROJECT", "project"), ("WORKFLOW", "workflow"),
                ("RUN", "workflowrun"), ("STAGE", "stage"), ("PHASE", "phase"),
                ("CLUSTER", "cluster")))),
    CliKind("ExecutionContext", "executioncontexts", ("executioncontext",), "tenant",
            "/tenants/{tenant}/executioncontexts",
            tuple((header, _field(name)) for header, name in (
                ("CLUSTER", "cluster"), ("NAMESPACE", "namespace"), ("PVC", "pvc"),
                ("INTEGRATION", "integration")))),
    CliKind("Integration", "integrations", ("integration",), "global", "/integrations",
            (("TYPE", _integration_type),)),
)

ALL_TENANTS_KINDS = ("workflows", "stages", "resources", "workflowruns", "workflowtriggers",
                     "workingpods")
"""The kinds the admin lists across tenants (`cyclone get KIND --all-tenants`)."""


def all_tenants_items(client: CycloneClient, kind: CliKind, project: str | None,
                      workflow: str | None) -> tuple[CliKind, list[dict]]:
    """Every tenant's objects of `kind` (of `project`/`workflow` when given) and the kind
    with a TENANT column first."""
    if kind.plural not in ALL_TENANTS_KINDS:
        raise CliError(f"--all-tenants lists {', '.join(ALL_TENANTS_KINDS)}, "
                       f"not {kind.plural}")
    found = client.items(f"/{kind.plural}", every_tenant=True)
    if kind.plural == "workingpods":
        wanted = {"project": project, "workflow": workflow}
        return kind, [o for o in found if all(o.get(k) == v for k, v in wanted.items() if v)]
    for key, value in ((keys.LABEL_PROJECT, project), (keys.LABEL_WORKFLOW, workflow)):
        if value:
            found = [o for o in found if (_meta(o).get("labels") or {}).get(key) == value]
    columns = (("TENANT", _label(keys.LABEL_TENANT)), *kind.columns)
    return replace(kind, columns=columns), found


_BY_NAME = {
    name.lower(): k for k in KINDS for name in (k.kind, k.plural, *k.aliases)
}


def lookup_kind(name: str) -> CliKind:
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        known = ", ".join(k.plural for k in KINDS)
        raise CliError(f"unknown kind {name!r} (one of: {known})") from None


def kind_of_object(obj: dict) -> CliKind:
    """Where an object goes: templates and resource types are labelled Stages/Resources."""
    labels = _meta(obj).get("labels") or {}
    if obj.get("kind") == "Stage" and keys.LABEL_STAGE_TEMPLATE in labels:
        return lookup_kind("templates")
    if obj.get("kind") == "Resource" and keys.LABEL_RESOURCE_TEMPLATE in labels:
        return lookup_kind("resourcetypes")
    return lookup_kind(obj["kind"])


def project_names(client: CycloneClient, project: str | None) -> list[str]:
    if project:
        return [project]
    return [_meta(p)["name"] for p in client.items("/projects")]


def workflow_names(client: CycloneClient, project: str, workflow: str | None) -> list[str]:
    if workflow:
        return [workflow]
    return [_meta(w)["name"] for w in client.items(f"/projects/{project}/workflows")]


def list_objects(client: CycloneClient, kind: CliKind, project: str | None,
                 workflow: str | None, *, chunk_size: int = 0) -> list[dict]:
    """Objects of a kind; without --project (or --workflow) across all of them. Runs are
    read `chunk_size` at a time (`cyclone.cli.paging`)."""
    from cyclone.cli.paging import paged_items

    if kind.scope == "global":
        return client.items(kind.path())
    if kind.scope == "tenant":
        return client.items(kind.collection.format(tenant=client.tenant))
    found: list[dict] = []
    for p in project_names(client, project):
        if kind.scope == "project":
            found.extend(client.items(kind.path(p)))
            continue
        for wf in workflow_names(client, p, workflow):
            found.extend(paged_items(client, kind.path(p, wf),
                                     chunk_size if kind.kind == "WorkflowRun" else 0))
    return found


def find_object(client: CycloneClient, kind: CliKind, name: str, project: str | None,
                workflow: str | None) -> tuple[dict, str]:
    """An object by name and its item path, searching projects/workflows when not given."""
    if kind.scope == "tenant":
        raise CliError(f"{kind.plural} are listed, not read one by one: "
                       f"`cyclone get {kind.plural}`")
    if kind.scope == "global":
        return client.get(kind.path(name=name)), kind.path(name=name)
    candidates: list[tuple[str, str | None]] = []
    for p in project_names(client, project):
        if kind.scope == "project":
            candidates.append((p, None))
        else:
            candidates.extend((p, wf) for wf in workflow_names(client, p, workflow))
    if len(candidates) == 1:
        path = kind.path(candidates[0][0], candidates[0][1], name)
        return client.get(path), path
    for p, wf in candidates:
        path = kind.path(p, wf, name)
        try:
            return client.get(path), path
        except CliError as err:
            if err.status != 404:
                raise
    raise CliError(f"{kind.kind.lower()} {name!r} not found", status=404)
