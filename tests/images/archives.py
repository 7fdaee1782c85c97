"""Reading the OCI archives `make images` writes: the index, blobs, config and layer files."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGES = Path(os.environ.get("CYCLONE_IMAGES_OUT") or REPO / "dist" / "images")
"""Where the build wrote its archives (`scripts/images/build.sh` honours the same variable)."""
BUILD = REPO / "scripts" / "images" / "build.sh"
REF_ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Archive:
    path: Path
    index: dict
    manifest: dict
    config: dict
    blobs: dict[str, tuple[int, str]]
    """Blob digest → (size, sha256 of its content)."""

    @property
    def reference(self) -> str:
        return self.index["manifests"][0]["annotations"][REF_ANNOTATION]

    def layer_members(self, layer: int) -> dict[str, tarfile.TarInfo]:
        return {m.name: m for m in _members(self.path, self.manifest["layers"][layer]["digest"])}

    def layer_file(self, layer: int, name: str) -> bytes:
        digest = self.manifest["layers"][layer]["digest"]
        with tarfile.open(self.path) as outer:
            blob = outer.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            with tarfile.open(fileobj=gzip.GzipFile(fileobj=blob), mode="r|") as layer_tar:
                for member in layer_tar:
                    if member.name == name:
                        return layer_tar.extractfile(member).read()
        raise KeyError(name)

    def layer_files_under(self, layer: int, prefix: str) -> dict[str, bytes]:
        """The regular files of a layer whose names start with `prefix`, read in one pass."""
        digest = self.manifest["layers"][layer]["digest"]
        found = {}
        with tarfile.open(self.path) as outer:
            blob = outer.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            with tarfile.open(fileobj=gzip.GzipFile(fileobj=blob), mode="r|") as layer_tar:
                for member in layer_tar:
                    if member.isfile() and member.name.startswith(prefix):
                        found[member.name] = layer_tar.extractfile(member).read()
        return found


@cache
def _members(path: Path, digest: str) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as outer:
        blob = outer.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
        with tarfile.open(fileobj=gzip.GzipFile(fileobj=blob), mode="r|") as layer_tar:
            return list(layer_tar)


def _blob_path(digest: str) -> str:
    return f"blobs/sha256/{digest.removeprefix('sha256:')}"


@cache
def read_archive(path: Path) -> Archive:
    files: dict[str, bytes] = {}
    blobs: dict[str, tuple[int, str]] = {}
    with tarfile.open(path) as archive:
        for member in archive:
            if not member.isfile():
                continue
            data = archive.extractfile(member)
            if member.name.startswith("blobs/sha256/"):
                sha = hashlib.sha256()
                while chunk := data.read(1 << 20):
                    sha.update(chunk)
                blobs[f"sha256:{member.name.rsplit('/', 1)[1]}"] = (member.size, sha.hexdigest())
                if member.size < 1 << 16:
                    files[member.name] = archive.extractfile(member).read()
            else:
                files[member.name] = data.read()
    index = json.loads(files["index.json"])
    [descriptor] = index["manifests"]
    manifest = json.loads(files[_blob_path(descriptor["digest"])])
    config = json.loads(files[_blob_path(manifest["config"]["digest"])])
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    return Archive(path, index, manifest, config, blobs)
