"""The /apply page's work: read pasted YAML, check each object (offline rules, then the
server's dry run) or create/update it, as `cyclone apply` does through the API.

Objects are written in dependency order (projects before what they hold, stages before the
workflows that name them, runs last) and reported in file order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pydantic
import yaml

from cyclone.api import keys
from cyclone.api.integration import Integration
from cyclone.api.validation import validate_object
from cyclone.kube import errors
from cyclone.server import catalog, integrations
from cyclone.server.crud import KindRoutes, create_object, update_object
from cyclone.server.objects import ObjectBody
from cyclone.server.runs import create_run
from cyclone.server.scopes import Scope, get_owned
from cyclone.ui.deps import UiSession

APPLY_ORDER = ("Integration", "Project", "Resource", "Stage", "Workflow", "WorkflowTrigger",
               "WorkflowRun")
"""The order `cyclone apply` writes kinds in."""
ROUTES: dict[str, KindRoutes] = {"Project": catalog.PROJECTS, "Resource": catalog.RESOURCES,
                                 "Stage": catalog.STAGES, "Workflow": catalog.WORKFLOWS,
                                 "WorkflowTrigger": catalog.TRIGGERS}
_SERVER_OWNED = ("resourceVersion", "uid", "creationTimestamp", "generation",
                 "managedFields", "selfLink", "deletionTimestamp", "namespace")
MAX_DOCUMENTS = 500


class ManifestError(ValueError):
    """The text is not a list of objects; the message is one line."""


@dataclass
class Outcome:
    """What happened to one object (or would happen, in a dry run)."""

    index: int
    kind: str
    name: str
    project: str = ""
    workflow: str = ""
    done: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(field, message); field is empty for an object-wide problem."""

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_documents(text: str) -> list[dict]:
    """The objects of one or many YAML documents (`List`s, and documents that are sequences
    of objects as Cyclone v1.2's template files are, unpacked)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
    objects: list[dict] = []
    for index, doc in enumerate(documents, start=1):
        if isinstance(doc, list) and doc and all(isinstance(item, dict) for item in doc):
            objects.extend(doc)
            continue
        if not isinstance(doc, dict):
            raise ManifestError(f"document {index} is not an object")
        if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            objects.extend(doc["items"])
        else:
            objects.append(doc)
    if not objects:
        raise ManifestError("no objects: paste or upload YAML with at least one document")
    if len(objects) > MAX_DOCUMENTS:
        raise ManifestError(f"too many objects ({len(objects)}; at most {MAX_DOCUMENTS})")
    for index, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict):
            raise ManifestError(f"object {index} is not an object")
    return objects


def _meta(obj: dict) -> dict:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _labels(obj: dict) -> dict:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def placement(obj: dict) -> tuple[str, str]:
    """(project, workflow) an object goes in, from its labels and `spec.workflowRef`."""
    kind = obj.get("kind")
    if kind == "Project":
        return str(_meta(obj).get("name") or ""), ""
    project = str(_labels(obj).get(keys.LABEL_PROJECT) or "")
    workflow = ""
    if kind in ("WorkflowTrigger", "WorkflowRun"):
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        ref = spec.get("workflowRef") if isinstance(spec.get("workflowRef"), dict) else {}
        workflow = str(ref.get("name") or _labels(obj).get(keys.LABEL_WORKFLOW) or "")
    return project, workflow


def _body(obj: dict) -> dict:
    body = {k: v for k, v in obj.items() if k != "status"}
    body["metadata"] = {k: v for k, v in _meta(obj).items() if k not in _SERVER_OWNED}
    return body


def _rank(item: tuple[int, dict]) -> int:
    kind = item[1].get("kind")
    return APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)


def _offline_problems(obj: dict) -> list[tuple[str, str]]:
    found = validate_object({"apiVersion": keys.API_VERSION, **obj})
    return [(e.path, e.message) for e in found]


def _causes(exc: errors.ApiError) -> list[tuple[str, str]]:
    causes = (exc.details or {}).get("causes") if isinstance(exc.details, dict) else None
    listed = [(str(c.get("field") or ""), str(c.get("message") or "")) for c in causes or []
              if isinstance(c, dict)]
    return listed or [("", exc.message)]


class _Batch:
    """The objects of one submission and the scopes they go in."""

    def __init__(self, session: UiSession, objects: Sequence[dict], dry_run: bool) -> None:
        self.session = session
        self.dry_run = dry_run
        self.projects = {placement(o)[0] for o in objects if o.get("kind") == "Project"}
        self.workflows = {(placement(o)[0], str(_meta(o).get("name") or ""))
                          for o in objects if o.get("kind") == "Workflow"}
        self.stages = {str(_meta(o).get("name") or "") for o in objects
                       if o.get("kind") == "Stage"}

    async def scope(self, project: str, workflow: str) -> Scope | None:
        """The scope to write in; None when the project or workflow exists only in this
        batch and a dry run cannot check against it."""
        tenant = await self.session.scope()
        if not project:
            return tenant
        try:
            await get_owned(tenant, catalog.PROJECTS.kind, project, "project")
        except errors.NotFound:
            if not (self.dry_run and project in self.projects):
                raise
            if workflow:
                return None
        scope = Scope(tenant.tenant, tenant.namespace, tenant.cluster, project,
                      labels={keys.LABEL_PROJECT: project})
        if not workflow:
            return scope
        try:
            await get_owned(scope, catalog.WORKFLOWS.kind, workflow, "workflow")
        except errors.NotFound:
            if not (self.dry_run and (project, workflow) in self.workflows):
                raise
            return None
        return Scope(scope.tenant, scope.namespace, scope.cluster, project, workflow,
                     labels={**scope.labels, keys.LABEL_WORKFLOW: workflow})

    def _stage_in_batch(self, obj: dict, cause: tuple[str, str]) -> bool:
        path = cause[0]
        if obj.get("kind") != "Workflow" or not path.endswith(".name"):
            return False
        try:
            index = int(path.split("[", 1)[1].split("]", 1)[0])
            return obj["spec"]["stages"][index]["name"] in self.stages
        except (IndexError, KeyError, TypeError, ValueError):
            return False

    async def write(self, outcome: Outcome, obj: dict) -> None:
        kind = outcome.kind
        would = "would be " if self.dry_run else ""
        if kind == "Integration":
            await self._integration(outcome, obj)
            return
        if kind not in (*ROUTES, "WorkflowRun"):
            outcome.problems.append(("kind", f"{kind} cannot be applied here; use "
                                     "`cyclone apply`"))
            return
        if kind != "Project" and not outcome.project:
            outcome.problems.append((f"metadata.labels[{keys.LABEL_PROJECT}]",
                                     "no project: set the label"))
            return
        if kind in ("WorkflowTrigger", "WorkflowRun") and not outcome.workflow:
            outcome.problems.append(("spec.workflowRef.name", "no workflow"))
            return
        scope = (await self.session.scope() if kind == "Project"
                 else await self.scope(outcome.project, outcome.workflow))
        if scope is None:
            outcome.done = f"{would}created after its workflow"
            return
        body = ObjectBody.model_validate(_body(obj))
        if kind == "WorkflowRun":
            try:
                made = await create_run(scope, body, self.dry_run)
            except errors.AlreadyExists:
                outcome.done = "unchanged (a run cannot be changed once created)"
                return
            outcome.name = made["metadata"]["name"]
            outcome.done = f"{would}created"
            return
        routes = ROUTES[kind]
        try:
            await create_object(routes, scope, body, self.dry_run)
            outcome.done = f"{would}created"
        except errors.AlreadyExists:
            await update_object(routes, scope, outcome.name, body, self.dry_run)
            outcome.done = f"{would}configured"

    async def _integration(self, outcome: Outcome, obj: dict) -> None:
        try:
            body = Integration.model_validate(_body(obj))
        except pydantic.ValidationError as exc:
            outcome.problems.extend((".".join(map(str, e["loc"])), e["msg"])
                                    for e in exc.errors())
            return
        if self.dry_run:
            outcome.done = "checked (integrations have no server dry run)"
            return
        state, tenant = self.session.state, self.session.tenant
        try:
            await integrations.create_integration(body, tenant, state)
            outcome.done = "created"
        except errors.AlreadyExists:
            await integrations.update_integration(outcome.name, body, tenant, state)
            outcome.done = "configured"

    async def run(self, index: int, obj: dict) -> Outcome:
        project, workflow = placement(obj)
        outcome = Outcome(index, str(obj.get("kind") or ""), str(_meta(obj).get("name") or ""),
                          project, workflow)
        outcome.problems = _offline_problems(obj)
        if outcome.problems:
            return outcome
        try:
            await self.write(outcome, obj)
        except errors.ApiError as exc:
            causes = [c for c in _causes(exc)
                      if not (self.dry_run and self._stage_in_batch(obj, c))]
            if causes:
                outcome.problems = causes
            else:
                outcome.done = "would be created after its stages"
        return outcome


async def apply_documents(session: UiSession, objects: Sequence[dict], *, dry_run: bool
                          ) -> list[Outcome]:
    """Check (`dry_run`) or write each object; outcomes in file order, numbered from 1.

    A real apply stops at the first object that fails, as `cyclone apply` does: what comes
    after it may depend on it."""
    batch = _Batch(session, objects, dry_run)
    outcomes: dict[int, Outcome] = {}
    failed = False
    for index, obj in sorted(enumerate(objects, start=1), key=_rank):
        if failed:
            outcomes[index] = Outcome(index, str(obj.get("kind") or ""),
                                      str(_meta(obj).get("name") or ""), *placement(obj),
                                      done="not applied (an earlier object failed)")
            continue
        outcome = await batch.run(index, obj)
        outcomes[index] = outcome
        failed = not dry_run and not outcome.ok
    return [outcomes[i] for i in sorted(outcomes)]
