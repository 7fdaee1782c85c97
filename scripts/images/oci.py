#!/usr/bin/env python3
"""Reproducible OCI image archives from root file system tarballs or directories.

Standard library only, so the build needs no registry, no daemon and no virtualenv.

    oci.py layer SOURCE OUT.tar.gz      a layer blob: SOURCE (a tar file or a directory)
                                        re-packed in name order with every mtime clamped
                                        to SOURCE_DATE_EPOCH, owners numeric, no user or
                                        group names, gzip without a timestamp. Writes
                                        OUT.tar.gz.json: {digest, diff_id, size,
                                        unpacked_size}.
    oci.py image OUT.oci.tar --ref REF [--entrypoint JSON] [--cmd JSON] [--user U]
                 [--env K=V]... [--workdir DIR] [--healthcheck JSON] LAYER.tar.gz...
                                        an oci-archive (oci-layout, index.json, blobs)
                                        whose index names REF (the annotations
                                        `ctr images import` and `podman load` read).
                                        --healthcheck is Docker's config field
                                        {Test, Interval, Timeout, StartPeriod, Retries}
                                        (durations in ns), which docker and podman run.

The same inputs and SOURCE_DATE_EPOCH give byte-identical outputs.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHUNK = 1 << 20


def epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


class HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to `target`."""

    def __init__(self, target):
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, data) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


def _normalised(info: tarfile.TarInfo, clamp: int) -> tarfile.TarInfo:
    info.mtime = min(int(info.mtime), clamp)
    info.uname = info.gname = ""
    info.pax_headers = {}
    name = info.name.removeprefix("./").lstrip("/")
    info.name = name or "."
    if info.islnk():
        info.linkname = info.linkname.removeprefix("./").lstrip("/")
    return info


def _ordered(members: list[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
    """Name order, hard links last so that each one follows the file it links to."""
    members = [m for m in members if m.name not in ("", ".")]
    return sorted((m for m in members if not m.islnk()), key=lambda m: m.name) + sorted(
        (m for m in members if m.islnk()), key=lambda m: m.name)


def _write_tar(out, source: Path, clamp: int) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        if source.is_dir():
            members = []
            for dirpath, dirnames, filenames in os.walk(source):
                for name in sorted(dirnames + filenames):
                    path = Path(dirpath) / name
                    members.append((path, dst.gettarinfo(str(path), str(path.relative_to(source)))))
            for path, info in sorted(members, key=lambda item: item[1].name):
                info = _normalised(info, clamp)
                if info.isreg():
                    with open(path, "rb") as data:
                        dst.addfile(info, data)
                else:
                    dst.addfile(info)
            return
        with tarfile.open(source, mode="r:*") as src:
            for member in _ordered(src.getmembers()):
                data = src.extractfile(member) if member.isreg() else None
                dst.addfile(_normalised(member, clamp), data)


def make_layer(source: Path, out: Path) -> dict:
    clamp = epoch()
    with tempfile.TemporaryFile() as raw:
        plain = HashingWriter(raw)
        _write_tar(plain, source, clamp)
        raw.seek(0)
        with open(out, "wb") as blob:
            packed = HashingWriter(blob)
            with gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=6, mtime=0,
                               filename="") as gz:
                shutil.copyfileobj(raw, gz, CHUNK)
    meta = {"digest": f"sha256:{packed.sha.hexdigest()}",
            "diff_id": f"sha256:{plain.sha.hexdigest()}", "size": packed.size,
            "unpacked_size": plain.size}
    Path(f"{out}.json").write_text(json.dumps(meta, sort_keys=True) + "\n")
    return meta


def _blob(data: bytes) -> tuple[str, bytes]:
    return f"sha256:{hashlib.sha256(data).hexdigest()}", data


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def make_image(out: Path, ref: str, layers: list[Path], *, entrypoint: list[str] | None,
               cmd: list[str] | None, user: str | None, env: list[str],
               workdir: str | None, healthcheck: dict | None = None) -> dict:
    created = datetime.fromtimestamp(epoch(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    metas = [json.loads(Path(f"{layer}.json").read_text()) for layer in layers]
    config: dict = {"Env": [PATH_ENV, *env]}
    if entrypoint is not None:
        config["Entrypoint"] = entrypoint
    if cmd is not None:
        config["Cmd"] = cmd
    if user:
        config["User"] = user
    if workdir:
        config["WorkingDir"] = workdir
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck
    config_digest, config_bytes = _blob(_canonical({
        "architecture": "amd64", "os": "linux", "created": created, "config": config,
        "rootfs": {"type": "layers", "diff_ids": [m["diff_id"] for m in metas]},
        "history": [{"created": created, "created_by": f"cyclone images: {layer.name}"}
                    for layer in layers],
    }))
    manifest_digest, manifest_bytes = _blob(_canonical({
        "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest,
                   "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": m["digest"], "size": m["size"]}
                   for m in metas],
    }))
    index = _canonical({
        "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{"mediaType": MANIFEST_MEDIA_TYPE, "digest": manifest_digest,
                       "size": len(manifest_bytes),
                       "annotations": {"io.containerd.image.name": ref,
                                       "org.opencontainers.image.ref.name": ref}}],
    })
    files: list[tuple[str, bytes | Path]] = [
        ("oci-layout", _canonical({"imageLayoutVersion": "1.0.0"})),
        ("index.json", index),
        (f"blobs/sha256/{manifest_digest[7:]}", manifest_bytes),
        (f"blobs/sha256/{config_digest[7:]}", config_bytes),
    ]
    seen = set()
    for layer, meta in zip(layers, metas, strict=True):
        if meta["digest"] not in seen:
            seen.add(meta["digest"])
            files.append((f"blobs/sha256/{meta['digest'][7:]}", layer))
    mtime = epoch()
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            archive.addfile(info)
        for name, content in sorted(files, key=lambda item: item[0]):
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = 0o644, mtime
            if isinstance(content, Path):
                info.size = content.stat().st_size
                with open(content, "rb") as data:
                    archive.addfile(info, data)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    tmp.replace(out)
    return {"reference": ref, "digest": manifest_digest, "size": out.stat().st_size,
            "unpacked_size": sum(m["unpacked_size"] for m in metas)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="oci.py")
    sub = parser.add_subparsers(dest="command", required=True)
    layer = sub.add_parser("layer")
    layer.add_argument("source", type=Path)
    layer.add_argument("out", type=Path)
    image = sub.add_parser("image")
    image.add_argument("out", type=Path)
    image.add_argument("layers", type=Path, nargs="+")
    image.add_argument("--ref", required=True)
    image.add_argument("--entrypoint", type=json.loads)
    image.add_argument("--cmd", type=json.loads)
    image.add_argument("--user")
    image.add_argument("--env", action="append", default=[])
    image.add_argument("--workdir")
    image.add_argument("--healthcheck", type=json.loads)
    args = parser.parse_args(argv)
    if args.command == "layer":
        result = make_layer(args.source, args.out)
    else:
        result = make_image(args.out, args.ref, args.layers, entrypoint=args.entrypoint,
                            cmd=args.cmd, user=args.user, env=args.env, workdir=args.workdir,
                            healthcheck=args.healthcheck)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
