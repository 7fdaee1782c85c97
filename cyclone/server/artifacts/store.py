"""The artifact store: tarballs uploaded by stages, kept for a retention period.

Layout: `<root>/{tenant}/{project}/{workflow}/{run}/{uid}/{artifact}` (the run's uid, as in
the log store) with its metadata in
`<run dir>/.meta/{artifact}.json`. Uploads are written to a temporary file and renamed
into place, so a reader never sees half an artifact. Directories are 0700 and files 0600
(`cyclone.server.private_files`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cyclone.server.logs.store import RunRef
from cyclone.server.private_files import make_private, private_mkdir, write_private_text

log = logging.getLogger(__name__)

_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_META_DIR = ".meta"
DEFAULT_MAX_BYTES = 2 * 1024**3


class InvalidArtifact(ValueError):
    """A bad artifact name, or an upload over the size limit."""


class ArtifactTooLarge(InvalidArtifact):
    """An upload over the store's size limit."""


class ArtifactNotFound(LookupError):
    pass


@dataclass
class ArtifactInfo:
    name: str
    size: int
    createdAt: str
    expiresAt: str | None = None
    stage: str | None = None


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_timestamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def check_artifact_name(name: str) -> str:
    if not _ARTIFACT_NAME.match(name) or name in {".", ".."}:
        raise InvalidArtifact(f"invalid artifact name {name!r}")
    return name


class ArtifactStore:
    """Artifacts of every run; `retention` None keeps them until deleted.

    Expiry is computed from the upload time and the current retention, so changing the
    retention applies to artifacts already stored.
    """

    def __init__(self, root: str | os.PathLike[str], *, retention: timedelta | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        make_private(self.root)
        self.retention = retention
        self.max_bytes = max_bytes

    def run_dir(self, ref: RunRef) -> Path:
        return self.root.joinpath(*ref.storage_parts())

    def path(self, ref: RunRef, name: str) -> Path:
        return self.run_dir(ref) / check_artifact_name(name)

    def _meta_path(self, ref: RunRef, name: str) -> Path:
        return self.run_dir(ref) / _META_DIR / f"{check_artifact_name(name)}.json"

    async def save(self, ref: RunRef, name: str, body: AsyncIterator[bytes], *,
                   stage: str | None = None, now: datetime | None = None) -> ArtifactInfo:
        """Store an upload, replacing an artifact of the same name."""
        target = self.path(ref, name)
        private_mkdir(target.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in body:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ArtifactTooLarge(
                            f"artifact {name!r} is larger than {self.max_bytes} bytes"
                        )
                    f.write(chunk)
            created = now or datetime.now(UTC)
            info = ArtifactInfo(
                name=name, size=size, createdAt=_timestamp(created),
                stage=stage,
            )
            meta = self._meta_path(ref, name)
            private_mkdir(meta.parent)
            write_private_text(meta, json.dumps(asdict(info)))
            os.replace(tmp_name, target)
            info.expiresAt = self._expiry(info.createdAt)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return info

    def info(self, ref: RunRef, name: str) -> ArtifactInfo:
        target = self.path(ref, name)
        if not target.is_file():
            raise ArtifactNotFound(f"artifact {name!r} not found")
        try:
            info = ArtifactInfo(**json.loads(self._meta_path(ref, name).read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            stat = target.stat()
            info = ArtifactInfo(name=name, size=stat.st_size,
                                createdAt=_timestamp(datetime.fromtimestamp(stat.st_mtime, UTC)))
        info.expiresAt = self._expiry(info.createdAt)
        return info

    def _expiry(self, created_at: str) -> str | None:
        if self.retention is None:
            return None
        return _timestamp(_parse_timestamp(created_at) + self.retention)

    def list(self, ref: RunRef) -> list[ArtifactInfo]:
        run_dir = self.run_dir(ref)
        if not run_dir.is_dir():
            return []
        return [
            self.info(ref, p.name) for p in sorted(run_dir.iterdir())
            if p.is_file() and not p.name.startswith(".")
        ]

    def delete(self, ref: RunRef, name: str) -> None:
        target = self.path(ref, name)
        if not target.is_file():
            raise ArtifactNotFound(f"artifact {name!r} not found")
        target.unlink()
        self._meta_path(ref, name).unlink(missing_ok=True)

    def delete_run(self, ref: RunRef) -> None:
        shutil.rmtree(self.run_dir(ref), ignore_errors=True)

    def sweep(self, now: datetime | None = None) -> int:
        """Remove every artifact older than the retention period; returns how many went."""
        if self.retention is None or not self.root.is_dir():
            return 0
        cutoff = (now or datetime.now(UTC)) - self.retention
        removed = 0
        metas = [*self.root.glob(f"*/*/*/*/*/{_META_DIR}/*.json"),
                 *self.root.glob(f"*/*/*/*/{_META_DIR}/*.json")]
        for meta in metas:
            try:
                created = _parse_timestamp(json.loads(meta.read_text())["createdAt"])
            except (OSError, ValueError, KeyError):
                continue
            if created <= cutoff:
                (meta.parent.parent / meta.name[: -len(".json")]).unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
                removed += 1
        return removed

    async def run_retention_sweeps(self, interval: float = 3600.0) -> None:
        """Sweep expired artifacts every `interval` seconds, until cancelled."""
        while True:
            try:
                removed = await asyncio.to_thread(self.sweep)
                if removed:
                    log.info("removed %d expired artifacts", removed)
            except OSError as err:
                log.warning("artifact retention sweep: %s", err)
            await asyncio.sleep(interval)
