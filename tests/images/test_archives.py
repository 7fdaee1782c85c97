"""The archives `make images` writes to dist/images: valid OCI archives carrying the names
the engine's pods use, with the content each image promises. Skipped when they were not
built; under CYCLONE_REQUIRE_K8S=1 (where `make test` builds them) a missing one fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.control_plane import unavailable

from cyclone.engine.core.images import IMAGE_TAG
from cyclone.resolvers import RESOLVER_SCRIPTS, resolver_script

from .archives import IMAGES, Archive, read_archive

NAMES = ["toolbox", "pause", "resolver-git", "resolver-svn", "resolver-image",
         "resolver-http", "cyclone"]


def archive(name: str) -> Archive:
    path = IMAGES / f"{name}.oci.tar"
    if not path.is_file():
        unavailable(f"image archive {path} missing; run `make images`")
    return read_archive(path)


@pytest.mark.parametrize("name", NAMES)
def test_archive_is_a_valid_oci_image_named_for_the_engine(name: str) -> None:
    image = archive(name)
    descriptor = image.index["manifests"][0]
    assert image.reference == f"docker.io/cyclone/{name}:{IMAGE_TAG}"
    assert descriptor["annotations"]["io.containerd.image.name"] == image.reference
    blobs = [descriptor, image.manifest["config"], *image.manifest["layers"]]
    for blob in blobs[1:]:
        size, sha = image.blobs[blob["digest"]]
        assert (blob["size"], f"sha256:{sha}") == (size, blob["digest"])
    assert image.manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert all(layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
               for layer in image.manifest["layers"])
    assert len(image.config["rootfs"]["diff_ids"]) == len(image.manifest["layers"])
    assert (image.config["os"], image.config["architecture"]) == ("linux", "amd64")


def test_index_lists_every_archive_with_its_manifest_digest() -> None:
    path = IMAGES / "index.json"
    if not path.is_file():
        unavailable(f"{path} missing; run `make images`")
    listed = {entry["name"]: entry for entry in json.loads(path.read_text())["images"]}
    assert sorted(listed) == sorted(NAMES)
    for name, entry in listed.items():
        image = archive(name)
        assert entry["reference"] == image.reference
        assert entry["archive"] == f"{name}.oci.tar"
        assert entry["digest"] == image.index["manifests"][0]["digest"]
        assert entry["size"] == image.path.stat().st_size


@pytest.mark.parametrize("name", sorted(RESOLVER_SCRIPTS))
def test_resolver_image_runs_the_package_script_as_its_entrypoint(name: str) -> None:
    image = archive(name.removeprefix("cyclone/"))
    entrypoint = image.layer_file(-1, "entrypoint.sh")
    assert entrypoint == resolver_script(RESOLVER_SCRIPTS[name]).read_bytes()
    assert image.config["config"]["Entrypoint"] == ["/entrypoint.sh"]
    assert image.config["config"]["WorkingDir"] == "/workspace"


def test_resolver_images_share_one_debian_layer() -> None:
    bases = {archive(name.removeprefix("cyclone/")).manifest["layers"][0]["digest"]
             for name in RESOLVER_SCRIPTS}
    assert len(bases) == 1


SUITE = os.environ.get("CYCLONE_IMAGES_SUITE") or "bookworm"
PUBLIC_DEBIAN_SOURCES = (
    f"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: {SUITE} {SUITE}-updates\n"
    f"Components: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n"
    f"Suites: {SUITE}-security\nComponents: main\n").encode()


def _host_apt_sources() -> list[bytes]:
    """The build machine's apt source files, as read and as the build passes them on."""
    files = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    found = []
    for path in files:
        if path.is_file() and path.read_bytes().strip():
            text = path.read_bytes()
            found += [text, b"".join(line for line in text.splitlines(keepends=True)
                                     if not line.startswith(b"#"))]
    return found


@pytest.mark.parametrize("name", ["resolver-git", "cyclone"])
def test_debian_images_carry_public_apt_sources_not_the_build_machines(name: str) -> None:
    image = archive(name)
    host = _host_apt_sources()
    sources = {}
    for layer in range(len(image.manifest["layers"])):
        for member, content in image.layer_files_under(layer, "etc/apt/").items():
            assert content not in host, f"{member} is the build machine's apt source"
            if member.startswith("etc/apt/sources.list"):
                sources[member] = content
    assert sources == {"etc/apt/sources.list.d/debian.sources": PUBLIC_DEBIAN_SOURCES}


def test_toolbox_has_sh_and_the_tools_the_gc_and_watchdog_pods_run() -> None:
    image = archive("toolbox")
    members = image.layer_members(0)
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode & 0o111
    for tool in ("bin/sh", "bin/sleep", "bin/rm", "bin/cat", "usr/bin/wget", "usr/bin/du",
                 "bin/df", "usr/bin/awk", "usr/bin/tee"):
        assert members[tool].issym() and members[tool].linkname == "/bin/busybox", tool
    assert image.config["config"]["Cmd"] == ["sh"]


def test_pause_sleeps_forever() -> None:
    image = archive("pause")
    assert image.config["config"]["Cmd"] == ["/bin/sleep", "infinity"]
    assert image.layer_members(0)["bin/sleep"].linkname == "busybox"


def test_cyclone_image_runs_cyclone_as_uid_10001() -> None:
    image = archive("cyclone")
    config = image.config["config"]
    assert config["Entrypoint"] == ["cyclone"]
    assert config["User"] == "10001:10001"
    assert config["WorkingDir"] == "/var/lib/cyclone"
    base, app = image.layer_members(0), image.layer_members(1)
    assert app["usr/local/bin/cyclone"].mode & 0o111
    assert "usr/local/lib/python3.11/dist-packages/cyclone/cli/main.py" in app
    assert "usr/local/lib/python3.11/dist-packages/fastapi/__init__.py" in base
    assert (base["var/lib/cyclone"].uid, base["var/lib/cyclone"].gid) == (10001, 10001)
    assert b"cyclone:x:10001:10001:" in image.layer_file(0, "etc/passwd")
    assert not [name for name in base if name.startswith(("usr/share/man/", "usr/bin/gcc"))]


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_reads_the_archive_and_its_config() -> None:
    path = archive("toolbox").path
    out = subprocess.run(["skopeo", "inspect", "--config", f"oci-archive:{path}"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out)["config"]["Cmd"] == ["sh"]
