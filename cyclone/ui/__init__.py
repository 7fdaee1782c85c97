"""The web UI: server-rendered pages (Jinja2 + htmx), the DAG layout, and the event streams
the pages follow. Mounted on the server's app by `cyclone.ui.app.mount_ui`."""
