"""The Jinja2 environment of the pages, the filters every template shares, and `render`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from cyclone import __version__
from cyclone.ui import urls

UI_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR / "static"
STATIC_PREFIX = "/ui/static"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
"""Pages run only this site's scripts: a log line or a manifest that slips markup past the
templates still cannot execute."""
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
PHASES = ("Pending", "Waiting", "Running", "Succeeded", "Failed", "Cancelled")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_seconds(seconds: float | None) -> str:
    """`1h2m`, `3m4s`, `5.2s`, `0.4s`; empty for None."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def duration_between(start: str | None, end: str | None, now: datetime | None = None
                     ) -> float | None:
    """Seconds from `start` to `end` (to now while `end` is empty); None without a start."""
    began = parse_time(start)
    if began is None:
        return None
    finished = parse_time(end) or now or datetime.now(UTC)
    return (finished - began).total_seconds()


def time_tag(value: str | None) -> Markup:
    """A `<time>` the page's script shows in the browser's zone, with UTC on hover."""
    parsed = parse_time(value)
    if parsed is None:
        return Markup("")
    utc = parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        parsed.astimezone(UTC).isoformat().replace("+00:00", "Z"), utc, utc)


def phase_badge(phase: str | None) -> Markup:
    phase = phase or "Pending"
    return Markup('<span class="badge phase-{}" data-phase="{}">{}</span>').format(
        phase.lower(), phase, phase)


def static_url(path: str) -> str:
    return f"{STATIC_PREFIX}/{path.lstrip('/')}?v={__version__}"


def to_json(value: Any) -> Markup:
    """JSON safe inside a `<script type="application/json">` block."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(["html", "svg", "xml"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update({
        "duration": format_seconds,
        "time": time_tag,
        "phase": phase_badge,
        "tojson_script": to_json,
    })
    env.globals.update({
        "static": static_url,
        "version": __version__,
        "duration_between": duration_between,
        "PHASES": PHASES,
        **urls.GLOBALS,
    })
    return env


def render(request: Request, template: str, context: dict | None = None, *,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """`template` rendered with the request's session (when signed in) and `context`."""
    session = getattr(request.state, "ui_session", None)
    values = {"request": request, "session": session,
              "csrf": session.csrf if session else "", **(context or {})}
    html = environment().get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})
