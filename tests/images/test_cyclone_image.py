"""The cyclone image as operators run it (dist/images/cyclone.oci.tar): uid 10001,
`cyclone` as entrypoint, Docker's Healthcheck, the dependencies of requirements.lock and
nothing to build with (no compiler, headers, pip or perl). Skipped when the archive was not
built; a missing one fails under CYCLONE_REQUIRE_K8S=1."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version
from support.control_plane import unavailable

from .archives import IMAGES, Archive, read_archive
from .test_lock import locked

SITE = "usr/local/lib/python3.11/dist-packages/"
SECOND = 1_000_000_000
COMPILERS = re.compile(
    r"^usr/(local/)?bin/((x86_64-linux-gnu-)?(gcc|g\+\+|cc|c\+\+|cpp|clang|ld|as|make)"
    r"(-[0-9.]+)?)$")


def cyclone() -> Archive:
    path = IMAGES / "cyclone.oci.tar"
    if not path.is_file():
        unavailable(f"image archive {path} missing; run `make images`")
    return read_archive(path)


@cache
def names(path: Path) -> frozenset[str]:
    image = read_archive(path)
    return frozenset(name for layer in range(len(image.manifest["layers"]))
                     for name in image.layer_members(layer))


def test_config_runs_cyclone_as_uid_10001_with_dockers_healthcheck() -> None:
    config = cyclone().config["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["cyclone"]
    assert config["Healthcheck"] == {
        "Test": ["CMD", "cyclone", "healthcheck"], "Interval": 30 * SECOND,
        "Timeout": 5 * SECOND, "StartPeriod": 10 * SECOND, "Retries": 3}
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]


def test_nothing_to_build_with_inside() -> None:
    files = names(cyclone().path)
    assert not [name for name in files if COMPILERS.match(name)]
    assert not [name for name in files if name.startswith(("usr/include/", "usr/lib/gcc/"))]
    assert not [name for name in files if name.startswith(
        (f"{SITE}pip/", f"{SITE}setuptools/", f"{SITE}wheel/", "usr/lib/python3/dist-packages/",
         "usr/bin/pip"))]
    assert not [name for name in files  # perl itself; perl-base stays for debconf
                if name.startswith("usr/share/perl/") or "/libperl.so" in name]


def test_the_image_command_is_the_packaged_one_and_runs_healthcheck_first() -> None:
    image = cyclone()
    command = Path(__file__).resolve().parents[2] / "scripts" / "images" / "cyclone-command"
    assert image.layer_file(-1, "usr/local/bin/cyclone") == command.read_bytes()
    assert image.layer_members(-1)["usr/local/bin/cyclone"].mode & 0o755 == 0o755


def test_dependencies_are_exactly_the_locked_versions() -> None:
    installed = {}
    for name in names(cyclone().path):
        match = re.fullmatch(re.escape(SITE) + r"([^/]+)-([^-/]+)\.dist-info/METADATA", name)
        if match:
            installed[canonicalize_name(match[1])] = Version(match[2])
    installed.pop("cyclone")
    assert installed == locked()


def test_python_code_is_byte_compiled_and_checks_no_times() -> None:
    """Unchecked-hash .pyc (flags 0b01): valid although the layers clamp every mtime."""
    image = cyclone()
    pyc = image.layer_file(-1, f"{SITE}cyclone/cli/__pycache__/main.cpython-311.pyc")
    assert int.from_bytes(pyc[4:8], "little") == 0b01
    base = image.layer_files_under(0, f"{SITE}typer/__pycache__/main.cpython-311.pyc")
    [typer_main] = base.values()
    assert int.from_bytes(typer_main[4:8], "little") == 0b01


def test_no_tests_of_dependencies() -> None:
    files = names(cyclone().path)
    assert not [name for name in files
                if re.match(re.escape(SITE) + r"[^/]+/tests?/", name)]
