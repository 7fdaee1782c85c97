"""SCM webhooks: signed events from GitHub, GitLab and Bitbucket Server start runs."""

from cyclone.server.webhooks.routes import router

__all__ = ["router"]
