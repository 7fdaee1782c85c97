"""SCM webhooks: the route providers post to, and the runs a delivery starts."""

from cyclone.server.webhooks.routes import router

__all__ = ["router"]
