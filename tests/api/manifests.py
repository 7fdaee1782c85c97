"""Loading the sample manifests of ``tests/fixtures/manifests``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

MANIFEST_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "manifests"


def manifest_paths() -> list[Path]:
    return sorted(MANIFEST_DIR.glob("*.yaml"))


def load_manifest(name: str) -> dict[str, Any]:
    """A fresh copy of a sample manifest, by file stem (``"workflow"``)."""
    return copy.deepcopy(yaml.safe_load((MANIFEST_DIR / f"{name}.yaml").read_text()))
