"""`cyclone project clean-cache`: empty a project's acceleration caches."""

from __future__ import annotations

import time

import typer

from cyclone.cli.errors import CliError
from cyclone.cli.session import client_from, handles_errors

WAIT_POLL_SECONDS = 0.5


def register(app: typer.Typer) -> None:
    project_app = typer.Typer(help="Work on a project as a whole.", no_args_is_help=True)
    app.add_typer(project_app, name="project")

    @project_app.command("clean-cache")
    @handles_errors
    def clean_cache(
        ctx: typer.Context,
        project: str = typer.Argument(..., help="Project whose caches are emptied."),
        wait: bool = typer.Option(False, "--wait", help="Wait until the cleaning has ended."),
        timeout: float = typer.Option(300.0, "--timeout", min=0,
                                      help="Seconds --wait waits at most."),
    ) -> None:
        """Empty the acceleration caches (caches/PROJECT on the tenant PVC) that runs
        labelled workflowrun.cyclone.dev/acceleration=true share."""
        with client_from(ctx) as client:
            task = client.post(f"/projects/{project}/cleancachetasks")
            typer.echo(f"cleancachetask/{task['name']} {task['phase']}")
            if not wait:
                return
            deadline = time.monotonic() + timeout
            while task["phase"] not in ("Succeeded", "Failed"):
                if time.monotonic() >= deadline:
                    raise CliError(f"cleancachetask/{task['name']} still {task['phase']} "
                                   f"after {timeout:g}s")
                time.sleep(WAIT_POLL_SECONDS)
                task = client.get(f"/projects/{project}/cleancachetasks/{task['name']}")
            typer.echo(f"cleancachetask/{task['name']} {task['phase']}")
            if task["phase"] == "Failed":
                raise CliError(f"cleaning the caches of project {project!r} failed"
                               + (f": {task['message']}" if task.get("message") else ""))
