"""`cyclone artifacts ls|get|put`: the tarballs a run's stages uploaded, in the acting
tenant (another tenant's runs are not found)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import typer

from cyclone.cli import options
from cyclone.cli.errors import CliError
from cyclone.cli.kinds import human_duration, parse_time, time_since
from cyclone.cli.output import print_records
from cyclone.cli.runs import locate_run
from cyclone.cli.session import client_from, handles_errors

if TYPE_CHECKING:
    from cyclone.cli.client import CycloneClient

CHUNK_BYTES = 1024 * 1024
PROGRESS_MIN_BYTES = 4 * CHUNK_BYTES
"""Transfers from this size show a progress bar, on a terminal only."""


def human_size(size: int) -> str:
    """Bytes as `ls -h` shows them: 512B, 1.5K, 20M, 3.1G."""
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)}B"
    return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"


def _time_left(timestamp: str | None, now: datetime) -> str:
    moment = parse_time(timestamp)
    return human_duration((moment - now).total_seconds()) if moment else "never"


def artifact_rows(items: list[dict], now: datetime) -> list[list[str]]:
    """NAME, STAGE, SIZE, AGE and EXPIRES (time left) of each artifact, oldest first."""
    ordered = sorted(items, key=lambda i: (i.get("createdAt") or "", i.get("name") or ""))
    return [[str(i.get("name") or ""), str(i.get("stage") or "<none>"),
             human_size(int(i.get("size") or 0)), time_since(i.get("createdAt"), now),
             _time_left(i.get("expiresAt"), now)] for i in ordered]


def print_artifacts(items: list[dict], output: str, no_headers: bool) -> None:
    print_records(items, output, headers=["NAME", "STAGE", "SIZE", "AGE", "EXPIRES"],
                  rows=lambda records: artifact_rows(records, datetime.now(UTC)),
                  name=lambda item: str(item.get("name")), no_headers=no_headers)


class TransferProgress:
    """A progress bar on stderr, told ``(done, total)`` bytes as a transfer goes: shown only
    when stderr is a terminal and the transfer is large (or of a size not known)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._shown = _stderr_is_terminal()
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        if not self._shown:
            return
        if self._progress is None:
            if total is not None and total < PROGRESS_MIN_BYTES:
                self._shown = False
                return
            self._start(total)
        self._progress.update(self._task, completed=done, total=total)

    def _start(self, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  DownloadColumn(), TransferSpeedColumn(),
                                  console=Console(stderr=True), transient=True)
        self._progress.start()
        self._task = self._progress.add_task(self.what, total=total)

    def __enter__(self) -> TransferProgress:
        return self

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _file_chunks(source: BinaryIO, size: int, tell: TransferProgress) -> Iterator[bytes]:
    done = 0
    while chunk := source.read(CHUNK_BYTES):
        done += len(chunk)
        tell(done, size)
        yield chunk


def _download_to(client: CycloneClient, path: str, name: str, target: str) -> tuple[int, str]:
    """The artifact into ``target`` (a file, a directory, or ``-`` for stdout), written
    whole or not at all; its size and where it went."""
    with TransferProgress(name) as told:
        if target == "-":
            out = sys.stdout.buffer
            size = client.download(path, out.write, progress=told)
            out.flush()
            return size, target
        destination = Path(target)
        if destination.is_dir():
            destination = destination / name
        import tempfile

        fd, partial = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                size = client.download(path, out.write, progress=told)
            os.chmod(partial, 0o666 & ~_umask())
            os.replace(partial, destination)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise
    return size, str(destination)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def register(app: typer.Typer) -> None:
    artifacts_app = typer.Typer(help="List, download and upload the artifacts of a run.",
                                no_args_is_help=True)
    app.add_typer(artifacts_app, name="artifacts")

    @artifacts_app.command("ls")
    @handles_errors
    def list_artifacts(
        ctx: typer.Context,
        run: str = typer.Argument(..., help="Run name."),
        project: str | None = options.PROJECT,
        workflow: str | None = options.WORKFLOW,
        output: str = options.OUTPUT,
        no_headers: bool = options.NO_HEADERS,
    ) -> None:
        """List the artifacts of a run, oldest first."""
        with client_from(ctx) as client:
            _, path, _, _ = locate_run(client, run, project, workflow)
            items = client.items(f"{path}/artifacts")
        print_artifacts(items, output, no_headers)

    @artifacts_app.command("get")
    @handles_errors
    def get_artifact(
        ctx: typer.Context,
        run: str = typer.Argument(..., help="Run name."),
        name: str = typer.Argument(..., help="Artifact name."),
        target: str | None = typer.Option(
            None, "--output", "-o", metavar="FILE",
            help="Where to write it: a file, a directory, or - for stdout "
                 "(default: NAME in the current directory)."),
        project: str | None = options.PROJECT,
        workflow: str | None = options.WORKFLOW,
    ) -> None:
        """Download an artifact of a run."""
        with client_from(ctx) as client:
            _, path, _, _ = locate_run(client, run, project, workflow)
            wanted = target or name
            try:
                size, written = _download_to(client, f"{path}/artifacts/{name}", name, wanted)
            except OSError as err:
                raise CliError(f"cannot write {wanted}: {err.strerror or err}") from None
        if written != "-":
            typer.echo(f"artifact/{name} saved to {written} ({human_size(size)})", err=True)

    @artifacts_app.command("put")
    @handles_errors
    def put_artifact(
        ctx: typer.Context,
        run: str = typer.Argument(..., help="Run name."),
        file: Path = typer.Argument(..., help="File to upload (a tarball, by convention)."),
        name: str | None = typer.Option(None, "--name",
                                        help="Artifact name (default: the file's name)."),
        stage: str | None = typer.Option(None, "--stage", help="Stage it belongs to."),
        project: str | None = options.PROJECT,
        workflow: str | None = options.WORKFLOW,
    ) -> None:
        """Upload a file as an artifact of a run (replacing one of the same name)."""
        artifact = name or file.name
        try:
            source = file.open("rb")
        except OSError as err:
            raise CliError(f"cannot read {file}: {err.strerror or err}") from None
        with source, client_from(ctx) as client:
            _, path, _, _ = locate_run(client, run, project, workflow)
            size = os.fstat(source.fileno()).st_size
            with TransferProgress(artifact) as tell:
                info = client.upload(f"{path}/artifacts/{artifact}",
                                     _file_chunks(source, size, tell), size=size,
                                     params={"stage": stage} if stage else None)
        typer.echo(f"artifact/{(info or {}).get('name', artifact)} uploaded "
                   f"({human_size(size)})")
