"""Cyclone: a Kubernetes-native CI/CD workflow engine."""

__version__ = "0.1.0"
