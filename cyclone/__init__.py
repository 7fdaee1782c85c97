"""Cyclone: a Kubernetes-native CI/CD workflow engine."""

from typing import Any


def __getattr__(name: str) -> Any:
    """``__version__`` is read from the installed metadata on first use: importing
    `importlib.metadata` costs more than the rest of `cyclone --help`."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        value = installed_version("cyclone")
    except PackageNotFoundError:
        value = "0+unknown"
    globals()["__version__"] = value
    return value
