"""Resolver scripts for the built-in resource types, shipped as package data.

Each script follows the resolver contract: ``/entrypoint.sh pull|push`` run in
``/workspace`` (``$WORKSPACE`` overrides it), data under ``/workspace/data``, parameters as
environment variables. Under the host runtime the node agent binds a script at
``/entrypoint.sh`` of the resolver image it stands for (`image_overlays`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

RESOLVER_SCRIPTS: dict[str, str] = {
    "cyclone/resolver-git": "git.sh",
    "cyclone/resolver-svn": "svn.sh",
    "cyclone/resolver-image": "image.sh",
    "cyclone/resolver-http": "http.sh",
}


def resolver_script(name: str) -> Path:
    """The file system path of a resolver script shipped with the package."""
    return Path(str(resources.files(__name__).joinpath(name)))


def resolver_image_overlays() -> dict[str, dict[str, str]]:
    """Image → {"/entrypoint.sh": script path}, for `HostRuntime(image_overlays=...)`."""
    return {
        image: {"/entrypoint.sh": str(resolver_script(script))}
        for image, script in RESOLVER_SCRIPTS.items()
    }
