"""How the CLI prints objects: tables for people, YAML or JSON for programs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
import yaml
from rich.console import Console
from rich.table import Table

from cyclone.cli.client import CliError
from cyclone.cli.kinds import CliKind

OUTPUT_FORMATS = ("table", "yaml", "json", "name")


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


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


def age(obj: dict, now: datetime | None = None) -> str:
    created = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    if created is None:
        return ""
    return human_duration(((now or datetime.now(UTC)) - created).total_seconds())


def print_objects(kind: CliKind, objects: list[dict], output: str) -> None:
    if output not in OUTPUT_FORMATS:
        raise CliError(f"unknown output format {output!r} (one of: {', '.join(OUTPUT_FORMATS)})")
    if output == "json":
        typer.echo(json.dumps(objects, indent=2))
    elif output == "yaml":
        typer.echo(yaml.safe_dump_all(objects, sort_keys=False), nl=False)
    elif output == "name":
        for obj in objects:
            typer.echo(f"{kind.kind.lower()}/{obj['metadata']['name']}")
    else:
        print_table(kind, objects)


def print_object(kind: CliKind, obj: dict, output: str) -> None:
    if output == "json":
        typer.echo(json.dumps(obj, indent=2))
    elif output == "yaml":
        typer.echo(yaml.safe_dump(obj, sort_keys=False), nl=False)
    else:
        print_objects(kind, [obj], output)


def print_table(kind: CliKind, objects: list[dict]) -> None:
    if not objects:
        typer.echo(f"No {kind.plural} found.")
        return
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    headers = ["NAME", *(name for name, _ in kind.columns), "AGE"]
    for header in headers:
        table.add_column(header, no_wrap=True)
    now = datetime.now(UTC)
    for obj in objects:
        table.add_row(obj["metadata"]["name"], *(read(obj) for _, read in kind.columns),
                      age(obj, now))
    console().print(table)
