"""Options many commands share, defined once so their flags and help read alike everywhere."""

from __future__ import annotations

import typer

from cyclone.cli.output import OUTPUT_HELP, SORT_HELP

PROJECT = typer.Option(None, "--project", "-p", help="Project.")
WORKFLOW = typer.Option(None, "--workflow", "-w", help="Workflow.")
OUTPUT = typer.Option("table", "--output", "-o", help=OUTPUT_HELP)
NO_HEADERS = typer.Option(False, "--no-headers", help="Tables without their header line.")
SORT_BY = typer.Option(None, "--sort-by", help=SORT_HELP)

MANIFEST_FILE = typer.Option(..., "--filename", "-f",
                             help="YAML file of Cyclone objects, or - for stdin.")
MANIFEST_PROJECT = typer.Option(None, "--project", "-p",
                                help="Project of project-scoped objects.")
MANIFEST_WORKFLOW = typer.Option(None, "--workflow", "-w",
                                 help="Workflow of runs and triggers.")
