"""Page routers of the web UI, one module per area."""
