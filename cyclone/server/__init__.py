"""The Cyclone REST server: tenants, integrations, projects, workflows and runs."""

from cyclone.server.app import API_PREFIX, bootstrap, create_app, serve

__all__ = ["API_PREFIX", "bootstrap", "create_app", "serve"]
