"""`make images` is cached by its inputs and reproducible: the same inputs give the same
bytes, a second build re-uses the first's archives, and the packer's output depends only on
the content and SOURCE_DATE_EPOCH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from .archives import BUILD, read_archive

PACKER = BUILD.parent / "oci.py"
needs_busybox = pytest.mark.skipif(
    shutil.which("busybox") is None, reason="busybox-static not installed (make images-deps)")


def build(tmp_path: Path, out: str, *images: str, epoch: str | None = None
          ) -> tuple[Path, str]:
    env = {**os.environ, "CYCLONE_IMAGES_CACHE": str(tmp_path / "cache"),
           "CYCLONE_IMAGES_OUT": str(tmp_path / out)}
    if epoch:
        env["SOURCE_DATE_EPOCH"] = epoch
    result = subprocess.run(["bash", str(BUILD), *images], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tmp_path / out, result.stderr


@needs_busybox
def test_a_second_build_reuses_the_cached_archives_byte_for_byte(tmp_path: Path) -> None:
    first, log = build(tmp_path, "one", "toolbox", "pause")
    assert [line.split()[1:3] for line in log.splitlines()[:2]] == [
        ["toolbox", "built"], ["pause", "built"]]
    second, log = build(tmp_path, "two", "pause")
    assert log.splitlines()[0].split()[1:3] == ["pause", "cached"]
    assert (second / "pause.oci.tar").read_bytes() == (first / "pause.oci.tar").read_bytes()
    index = json.loads((second / "index.json").read_text())["images"]
    assert [entry["name"] for entry in index] == ["pause"]


@needs_busybox
def test_two_cold_builds_give_the_same_digest(tmp_path: Path) -> None:
    first, _ = build(tmp_path / "a", "out", "toolbox")
    second, _ = build(tmp_path / "b", "out", "toolbox")
    assert (first / "toolbox.oci.tar").read_bytes() == (second / "toolbox.oci.tar").read_bytes()


@needs_busybox
def test_the_cache_keeps_one_version_of_each_image(tmp_path: Path) -> None:
    build(tmp_path, "out", "pause", epoch="1000")
    build(tmp_path, "out", "pause", epoch="2000")
    cache = tmp_path / "cache"
    assert len(list((cache / "archives").glob("pause-*.oci.tar"))) == 1
    assert len(list((cache / "layers").glob("pause-*.tar.gz"))) == 1
    assert read_archive(tmp_path / "out" / "pause.oci.tar").config["created"].startswith(
        "1970-01-01T00:33:20")


def pack(source: Path, out: Path, epoch: int) -> dict:
    result = subprocess.run([sys.executable, str(PACKER), "layer", str(source), str(out)],
                            env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)},
                            capture_output=True, text=True, timeout=30, check=True)
    return json.loads(result.stdout)


def test_a_layer_depends_only_on_content_and_source_date_epoch(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "b").mkdir(parents=True)
    (tree / "b" / "file").write_text("x")
    (tree / "a").write_text("y")
    (tree / "link").symlink_to("a")
    first = pack(tree, tmp_path / "1.tar.gz", 1000)
    os.utime(tree / "a", (5000, 5000))
    (tree / "b" / "file").chmod(0o600)
    (tree / "b" / "file").chmod(0o644)
    assert pack(tree, tmp_path / "2.tar.gz", 1000) == first
    assert (tmp_path / "1.tar.gz").read_bytes() == (tmp_path / "2.tar.gz").read_bytes()
    assert pack(tree, tmp_path / "3.tar.gz", 2000)["digest"] != first["digest"]
    with tarfile.open(tmp_path / "1.tar.gz") as layer:
        members = layer.getmembers()
    assert [m.name for m in members] == ["a", "b", "b/file", "link"]
    assert {(m.mtime, m.uname, m.gname) for m in members} == {(1000, "", "")}


def test_an_image_archive_names_its_reference_and_shares_repeated_layers(
        tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hello").write_text("hi")
    pack(tree, tmp_path / "l.tar.gz", 1000)
    out = tmp_path / "x.oci.tar"
    subprocess.run([sys.executable, str(PACKER), "image", str(out), str(tmp_path / "l.tar.gz"),
                    str(tmp_path / "l.tar.gz"), "--ref", "docker.io/cyclone/x:1",
                    "--entrypoint", '["/hello"]', "--user", "7:7"],
                   env={**os.environ, "SOURCE_DATE_EPOCH": "1000"}, check=True,
                   capture_output=True, timeout=30)
    image = read_archive(out)
    assert image.reference == "docker.io/cyclone/x:1"
    assert image.config["created"] == "1970-01-01T00:16:40Z"
    assert (image.config["config"]["Entrypoint"], image.config["config"]["User"]) == (
        ["/hello"], "7:7")
    assert len(image.manifest["layers"]) == 2 and len(image.blobs) == 3
