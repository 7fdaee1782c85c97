"""The web link of a run, as commit statuses and notifications carry it (pure, no I/O).

The server (a commit status's target URL, written when an SCM delivery starts a run) and
the engine (notifications) build the link with `run_link` from the same template, so both
name the same page. A template is a URL with the placeholders ``{tenant}``,
``{project}``, ``{workflow}`` and ``{run}``; each value is percent-encoded as one path
segment. Without a template the link is the web UI's own run page under the server's URL.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from cyclone.api import keys

PLACEHOLDERS = ("tenant", "project", "workflow", "run")
ANNOTATION_WEB_URL = "workflowrun.cyclone.dev/web-url"
"""On the run object a notification sends: the run's link (never stored on the run)."""
RUN_PAGE = "/projects/{project}/workflows/{workflow}/runs/{run}"
"""The web UI's run page (`cyclone.ui.urls.run_url`) as a template path."""


def default_template(server_url: str) -> str:
    """The UI's run page under `server_url`."""
    return server_url.rstrip("/") + RUN_PAGE


def template_problem(template: str) -> str | None:
    """Why `template` cannot make links, in one line; None when it can."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"web URL template {template!r}: {exc} (write a literal brace as {{{{ or }}}})"
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else "") + "}"
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            return f"web URL template {template!r}: unknown placeholder {shown} (known: {known})"
    scheme = urlsplit(template).scheme
    if scheme not in ("http", "https"):
        return f"web URL template {template!r}: must start with http:// or https://"
    return None


def check_template(template: str) -> str:
    """`template` when it can make links; ValueError naming the problem otherwise."""
    problem = template_problem(template)
    if problem is not None:
        raise ValueError(problem)
    return template


def effective_template(template: str | None, server_url: str) -> str:
    """The template in force: the one given, else the UI's run page under `server_url`."""
    return template or default_template(server_url)


def web_url(template: str, *, tenant: str, project: str, workflow: str, run: str) -> str:
    """The link `template` makes for one run."""
    values = {"tenant": tenant, "project": project, "workflow": workflow, "run": run}
    return template.format(**{k: quote(str(v), safe="") for k, v in values.items()})


def run_link(template: str | None, server_url: str, run: Mapping[str, Any]) -> str:
    """The link of a WorkflowRun object (names from its namespace, labels and workflowRef)."""
    meta = run.get("metadata") or {}
    labels = meta.get("labels") or {}
    workflow = labels.get(keys.LABEL_WORKFLOW) or (
        (run.get("spec") or {}).get("workflowRef") or {}).get("name") or ""
    return web_url(effective_template(template, server_url),
                   tenant=(meta.get("namespace") or "").removeprefix(
                       keys.TENANT_NAMESPACE_PREFIX),
                   project=labels.get(keys.LABEL_PROJECT) or "", workflow=workflow,
                   run=meta.get("name") or "")


def with_link(run: Mapping[str, Any], link: str) -> dict:
    """A copy of `run` whose annotations carry `link` (what Webhook receivers get)."""
    meta = dict(run.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION_WEB_URL: link}
    return {**run, "metadata": meta}
