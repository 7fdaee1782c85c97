"""How the CLI prints objects, with kubectl's conventions.

Tables are plain text, columns apart by three spaces. Nothing is cut when stdout is not a
terminal (a pipe, a file): `| grep` finds every full name. On a terminal only the last,
free-text column (MESSAGE) is shortened to the terminal's width. `-o` takes `table`,
`wide`, `json`, `yaml`, `name` or `jsonpath=TEMPLATE`; lists are sorted by creation time,
newest last, unless `--sort-by PATH` says otherwise.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.cells import cell_len, set_cell_size

from cyclone.cli import jsonpath
from cyclone.cli.errors import CliError
from cyclone.cli.kinds import CliKind

if TYPE_CHECKING:
    from rich.console import Console

OUTPUT_FORMATS = ("table", "wide", "yaml", "json", "name", "jsonpath=TEMPLATE")
OUTPUT_HELP = "table, wide, yaml, json, name or jsonpath=TEMPLATE."
SORT_HELP = "Sort by this field, e.g. .metadata.name or .status.overall.startTime."
_SEPARATOR = "   "


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class OutputFormat:
    """A parsed `-o` value."""

    name: str
    template: str = ""

    @property
    def tabular(self) -> bool:
        return self.name in ("table", "wide")


def parse_output(value: str) -> OutputFormat:
    name, sep, template = value.partition("=")
    name = name.strip().lower() or "table"
    if name == "jsonpath":
        if not sep or not template.strip():
            raise CliError("-o jsonpath needs a template, e.g. -o jsonpath='{.metadata.name}'")
        try:
            jsonpath.parse_template(template)
        except jsonpath.JsonPathError as err:
            raise CliError(f"-o jsonpath: {err}") from None
        return OutputFormat("jsonpath", template)
    if sep or name not in OUTPUT_FORMATS:
        raise CliError(f"unknown output format {value!r} (one of: {', '.join(OUTPUT_FORMATS)})")
    return OutputFormat(name)


def terminal_width() -> int | None:
    """The terminal's width when stdout is one; None for pipes and files."""
    try:
        if not sys.stdout.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size().columns


def _cell(value: object) -> str:
    """One line: inner whitespace and line breaks collapsed, leading indentation kept."""
    text = str(value)
    indent = len(text) - len(text.lstrip(" "))
    return " " * indent + " ".join(text.split())


def format_table(headers: list[str], rows: list[list[str]], *, no_headers: bool = False,
                 width: int | None = None, separator: str = _SEPARATOR) -> list[str]:
    """Rows as aligned lines; with `width`, lines are cut to it, so the last column (free
    text such as MESSAGE) is what gets shortened."""
    cells = [[_cell(v) for v in row] for row in rows]
    shown = cells if no_headers else [list(headers), *cells]
    if not shown:
        return []
    widths = [max(cell_len(row[i]) for row in shown) for i in range(len(headers))]
    lines = []
    for row in shown:
        parts = [set_cell_size(value, widths[index]) if index < len(row) - 1 else value
                 for index, value in enumerate(row)]
        line = separator.join(parts).rstrip()
        if width is not None and cell_len(line) > width:
            line = set_cell_size(line, width - 1) + "…"
        lines.append(line)
    return lines


def _sort_key(value: object) -> tuple:
    if jsonpath.is_missing(value) or value is None:
        return (2, 0, "")
    if isinstance(value, bool):
        return (0, int(value), "")
    if isinstance(value, (int, float)):
        return (0, value, "")
    return (1, 0, jsonpath.text_of(value))


def sort_objects(objects: list[dict], sort_by: str | None = None) -> list[dict]:
    """By `sort_by` (a path), else by creation time, newest last; then by name."""
    def name(obj: dict) -> str:
        return (obj.get("metadata") or {}).get("name") or ""

    if sort_by:
        try:
            jsonpath.parse_path(sort_by.strip().strip("{}"))
        except jsonpath.JsonPathError as err:
            raise CliError(f"--sort-by {sort_by!r}: {err}") from None
        return sorted(objects, key=lambda o: (_sort_key(jsonpath.first_value(sort_by, o)),
                                              name(o)))

    def created(obj: dict) -> str:
        return (obj.get("metadata") or {}).get("creationTimestamp") or ""

    return sorted(objects, key=lambda o: (created(o), name(o)))


def table_lines(kind: CliKind, objects: list[dict], *, wide: bool = False,
                no_headers: bool = False, width: int | None = None) -> list[str]:
    columns = kind.table_columns(wide=wide)
    now = datetime.now(UTC)
    rows = [[read(obj, now) for _, read in columns] for obj in objects]
    return format_table([header for header, _ in columns], rows, no_headers=no_headers,
                        width=width if kind.squeezable(wide=wide) else None)


def print_objects(kind: CliKind, objects: list[dict], output: str, *,
                  no_headers: bool = False, sort_by: str | None = None) -> None:
    import yaml

    fmt = parse_output(output)
    objects = sort_objects(objects, sort_by)
    if fmt.name == "json":
        typer.echo(json.dumps(objects, indent=2))
    elif fmt.name == "yaml":
        typer.echo(yaml.safe_dump_all(objects, sort_keys=False), nl=False)
    elif fmt.name == "name":
        for obj in objects:
            typer.echo(f"{kind.kind.lower()}/{obj['metadata']['name']}")
    elif fmt.name == "jsonpath":
        typer.echo(jsonpath.render(fmt.template, {"apiVersion": "v1", "kind": "List",
                                                  "items": objects}), nl=False)
    elif not objects:
        typer.echo(f"No {kind.plural} found.", err=True)
    else:
        for line in table_lines(kind, objects, wide=fmt.name == "wide",
                                no_headers=no_headers, width=terminal_width()):
            typer.echo(line)


def print_records(records: list[dict], output: str, *, headers: list[str],
                  rows: Callable[[list[dict]], list[list[str]]], name: Callable[[dict], str],
                  no_headers: bool = False) -> None:
    """Records that are not Kubernetes objects (artifacts, tokens) in any `-o` format; `rows`
    makes the table's rows (in its own order), `name` the line `-o name` prints."""
    import yaml

    fmt = parse_output(output)
    if fmt.name == "json":
        typer.echo(json.dumps(records, indent=2))
    elif fmt.name == "yaml":
        typer.echo(yaml.safe_dump(records, sort_keys=False), nl=False)
    elif fmt.name == "name":
        for record in records:
            typer.echo(name(record))
    elif fmt.name == "jsonpath":
        typer.echo(jsonpath.render(fmt.template, {"items": records}), nl=False)
    else:
        for line in format_table(headers, rows(records), no_headers=no_headers,
                                 width=terminal_width()):
            typer.echo(line)


def print_object(kind: CliKind, obj: dict, output: str, *, no_headers: bool = False) -> None:
    import yaml

    fmt = parse_output(output)
    if fmt.name == "json":
        typer.echo(json.dumps(obj, indent=2))
    elif fmt.name == "yaml":
        typer.echo(yaml.safe_dump(obj, sort_keys=False), nl=False)
    elif fmt.name == "jsonpath":
        typer.echo(jsonpath.render(fmt.template, obj), nl=False)
    else:
        print_objects(kind, [obj], output, no_headers=no_headers)
