"""scripts/images/requirements.lock, which the cyclone image (build.sh and the Dockerfile)
installs exactly: every dependency of pyproject.toml pinned to a version it accepts, one
sha256 per pin, and closed under the requirements of what it pins."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "scripts" / "images" / "requirements.lock"
PIN = re.compile(r"^([a-z0-9-]+)==(\S+) \\\n    --hash=sha256:([0-9a-f]{64})$", re.M)


def locked() -> dict[str, Version]:
    text = LOCK.read_text()
    entries = [block for block in re.split(r"\n(?=[a-z0-9])", text) if block[:1].isalnum()]
    pins = {}
    for entry in entries:
        match = PIN.fullmatch(entry.strip())
        assert match, f"not `name==version --hash=sha256:...`: {entry!r}"
        name, version, _ = match.groups()
        assert name == canonicalize_name(name) and name not in pins, name
        pins[name] = Version(version)
    return pins


def project_dependencies() -> list[Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [Requirement(spec) for spec in pyproject["project"]["dependencies"]]


def test_every_dependency_of_pyproject_is_pinned_to_a_version_it_accepts() -> None:
    pins = locked()
    for requirement in project_dependencies():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={pins[name]}, which {requirement} refuses")


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def test_the_lock_is_closed_under_the_requirements_of_what_it_pins() -> None:
    """Walks the requirements from pyproject through the metadata of each locked version the
    virtualenv has installed: each one reached is pinned to a version it accepts, and
    nothing else is pinned when the walk could read every pin's metadata."""
    pins = locked()
    todo = [(requirement, "pyproject.toml") for requirement in project_dependencies()]
    reached: set[str] = set()
    expanded: set[tuple[str, frozenset[str]]] = set()
    unread: set[str] = set()
    while todo:
        requirement, wanted_by = todo.pop()
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{wanted_by} requires {requirement}, not in {LOCK.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{wanted_by} requires {requirement}; {LOCK.name} pins {pins[name]}")
        reached.add(name)
        extras = frozenset(requirement.extras)
        if (name, extras) in expanded:
            continue
        expanded.add((name, extras))
        try:
            installed = distribution(name)
        except PackageNotFoundError:
            unread.add(name)
            continue
        if Version(installed.version) != pins[name]:
            unread.add(name)
            continue
        for spec in installed.requires or []:
            needed = Requirement(spec)
            if _applies(needed, extras):
                todo.append((needed, f"{name}=={pins[name]}"))
    if not unread:
        assert sorted(set(pins) - reached) == [], "pinned but required by nothing"
