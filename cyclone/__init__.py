"""Cyclone: a Kubernetes-native CI/CD workflow engine."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed_version

try:
    __version__ = _installed_version("cyclone")
except PackageNotFoundError:
    __version__ = "0+unknown"
