"""`cyclone lint -f` and `cyclone apply --dry-run=server`: what the server would refuse.

Each problem is one line, ``FILE:doc N KIND/NAME: FIELD: MESSAGE`` (N counts the file's
objects from 1, in file order), and the command exits 1 when there is any.

``lint`` checks offline first: every object against its schema and rules (unknown fields
with the nearest valid name, the pod spec against the Kubernetes schema, the DAG), and each
Workflow against the Stages of the same file (stage names, output references upstream).
When a server is reachable it then asks for the server's verdict on every object as
``apply`` would send it (``dryRun=All``: checked as a write, nothing stored), which adds
what only the server knows: Stages already stored, tenant policy, names in use. A Workflow
may name Stages the same file defines: ``apply`` writes Stages before Workflows, so the
server's "stage not found" about them is not a problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from cyclone.api import keys
from cyclone.cli import options
from cyclone.cli.errors import CliError
from cyclone.cli.kinds import kind_of_object
from cyclone.cli.session import client_from, handles_errors

if TYPE_CHECKING:
    from cyclone.api.validation import FieldError
    from cyclone.cli.client import CycloneClient

Apply = Callable[..., str]
"""`cyclone.cli.objects.apply_object`: (client, obj, project, workflow, *, dry_run) → what
happened."""
DRY_RUN_KINDS = ("Tenant", "Integration", "Project", "Resource", "Stage", "Workflow",
                 "WorkflowTrigger", "WorkflowRun")
"""Kinds whose create and update routes take ``dryRun``."""


@dataclass(frozen=True)
class Document:
    """An object of a file and where it is: ``index`` counts from 1 in file order."""

    source: str
    index: int
    obj: dict

    @property
    def label(self) -> str:
        meta = self.obj.get("metadata") or {}
        return f"{self.source}:doc {self.index} {self.obj.get('kind')}/{meta.get('name') or ''}"

    def problem(self, error: FieldError | str) -> str:
        return f"{self.label}: {error}"


def documents(source: str, objects: list[dict]) -> list[Document]:
    return [Document(source, index, obj) for index, obj in enumerate(objects, start=1)]


def stages_of(docs: list[Document]) -> dict[str, dict]:
    return {str((d.obj.get("metadata") or {}).get("name")): d.obj
            for d in docs if d.obj.get("kind") == "Stage"}


def offline_problems(docs: list[Document]) -> list[str]:
    """Schema and rule problems of each object, and the references between the file's own
    objects (a stage a Workflow names that the file lacks may exist on the server: only the
    server's verdict can tell). ``apiVersion`` may be left out, as ``apply`` allows."""
    from cyclone.api.references import workflow_reference_errors
    from cyclone.api.validation import validate_object

    stages = stages_of(docs)
    found: list[str] = []
    for doc in docs:
        errors = validate_object({"apiVersion": keys.API_VERSION, **doc.obj})
        found += [doc.problem(e) for e in errors]
        if doc.obj.get("kind") == "Workflow" and not errors:
            found += [doc.problem(e) for e in workflow_reference_errors(doc.obj, stages, "file")
                      if not e.path.endswith(".name")]
    return found


def _stage_named_in_file(cause: dict, obj: dict, stages: dict[str, dict]) -> bool:
    path = str(cause.get("field") or "")
    if obj.get("kind") != "Workflow" or not path.endswith(".name"):
        return False
    try:
        index = int(path.split("[", 1)[1].split("]", 1)[0])
        name = obj["spec"]["stages"][index]["name"]
    except (IndexError, KeyError, TypeError, ValueError):
        return False
    return name in stages


def server_verdict(client: CycloneClient, apply: Apply, doc: Document,
                   stages: dict[str, dict], project: str | None,
                   workflow: str | None) -> tuple[str, list[str]]:
    """Send the object as ``apply`` would, with ``dryRun=All``: what would happen
    (``stage/build created``) and the problems the server found, one line each.

    A problem of the object the CLI finds before sending it (no project) is one of the
    problems too."""
    kind = doc.obj.get("kind")
    if kind not in DRY_RUN_KINDS:
        return f"{str(kind).lower()} not checked by the server (no dry run for this kind)", []
    try:
        return apply(client, doc.obj, project, workflow, dry_run=True), []
    except CliError as err:
        if err.status is None:
            return "", [doc.problem(err.message)]
        causes = [c for c in err.causes if not _stage_named_in_file(c, doc.obj, stages)]
        if err.causes and not causes:
            return f"{kind_of_object(doc.obj).kind.lower()} would apply after its stages", []
        if not causes:
            return "", [doc.problem(err.message)]
        return "", [doc.problem(f"{c.get('field') or '(object)'}: {c.get('message')}")
                    for c in causes]


def report(problems: list[str]) -> None:
    """Print each problem once and exit 1 when there is any."""
    problems = list(dict.fromkeys(problems))
    for line in problems:
        typer.echo(line)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        typer.echo(f"{count} found", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer, read: Callable[[str], list[dict]],
             rank: Callable[[dict], int], apply: Apply) -> None:
    """The `lint` command; ``read``, ``rank`` and ``apply`` are `apply`'s own steps."""

    @app.command()
    @handles_errors
    def lint(
        ctx: typer.Context,
        filename: str = options.MANIFEST_FILE,
        project: str | None = options.MANIFEST_PROJECT,
        workflow: str | None = options.MANIFEST_WORKFLOW,
        offline: bool = typer.Option(False, "--offline",
                                     help="Only the checks that need no server."),
    ) -> None:
        """Check a file of Cyclone objects: schema, references, and the server's verdict."""
        docs = documents(filename, read(filename))
        problems = offline_problems(docs)
        if not offline:
            stages = stages_of(docs)
            try:
                with client_from(ctx) as client:
                    client.request("GET", "/healthcheck", api=False)
                    for doc in sorted(docs, key=lambda d: rank(d.obj)):
                        problems += server_verdict(client, apply, doc, stages, project,
                                                   workflow)[1]
            except CliError as err:
                if err.status is not None:
                    raise
                typer.echo(f"warning: offline checks only: {err.message}", err=True)
        report(problems)
        typer.echo(f"{filename}: {len(docs)} object{'s' if len(docs) != 1 else ''} valid")
