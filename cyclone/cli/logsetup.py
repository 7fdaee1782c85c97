"""The logging of Cyclone's long-running commands (`up`, `server`, `engine`, `node`).

One handler on the root logger, writing to stderr in one of two formats:

- ``text``: ``2026-01-02T03:04:05.678Z INFO cyclone.engine: run ended run=build-1
  namespace=cyclone-p phase=Succeeded``
- ``json``: one object per line, ``{"time": …, "level": …, "logger": …, "message": …}``
  plus the record's fields.

Fields are how a log line carries data a program can select on: whatever a call passes
as ``extra={"run": name, "namespace": ns, "phase": phase, "duration_seconds": 4.2}``
becomes JSON keys, and ``key=value`` suffixes in text (values with spaces or quotes are
JSON-quoted; a None field is left out of text and is ``null`` in JSON). Keys should be
plain snake_case words; one that collides with a reserved ``LogRecord`` attribute
(``name``, ``message``, ``args``…) is refused by `logging` itself.
An exception's traceback goes to ``exc_info`` in JSON and after the line in text.

Uvicorn's and httpx's loggers go through the same handler; below ``debug`` their per-request
lines are held back.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
FORMATS = ("text", "json")
CHATTY = ("httpx", "httpx2", "httpcore", "uvicorn.access", "uvicorn.error", "uvicorn.asgi")
"""Loggers that speak per request or per connection: shown only at debug."""
OWN_HANDLERS = ("uvicorn",)
"""Parents that a uvicorn started with its default log config (in this process, earlier)
leaves with a handler of their own and no propagation, hiding their children's lines."""

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


class LogSetupError(ValueError):
    """An unknown log level or format; the message names the valid ones."""


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra=` fields of a record, in the order they were given."""
    return {key: value for key, value in vars(record).items()
            if key not in _RESERVED and not key.startswith("_")}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _text_value(value: Any) -> str:
    plain = _plain(value)
    if isinstance(plain, str) and plain and not any(c in plain for c in ' "=\n\t'):
        return plain
    return json.dumps(plain, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value…``, then the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        suffix = " ".join(f"{k}={_text_value(v)}" for k, v in fields_of(record).items()
                          if v is not None)
        if suffix:
            line = f"{line} {suffix}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        elif record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname,
                                 "logger": record.name, "message": record.getMessage()}
        for key, value in fields_of(record).items():
            entry.setdefault(key, _plain(value))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return TextFormatter()
    raise LogSetupError(f"unknown log format {log_format!r} (one of: {', '.join(FORMATS)})")


def level_of(name: str) -> int:
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise LogSetupError(
            f"unknown log level {name!r} (one of: {', '.join(LEVELS)})") from None


def configure_logging(level: str = "info", log_format: str = "text",
                      stream: IO[str] | None = None) -> logging.Handler:
    """Route every logger through one handler on the root; returns that handler.

    Replaces the root's handlers, so calling it again (e.g. in tests) does not double lines.
    """
    threshold = level_of(level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    root = logging.getLogger()
    for previous in list(root.handlers):
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in CHATTY:
        chatty = logging.getLogger(name)
        chatty.handlers.clear()
        chatty.propagate = True
        chatty.setLevel(threshold if threshold <= logging.DEBUG else max(threshold,
                                                                          logging.WARNING))
    for name in OWN_HANDLERS:
        parent = logging.getLogger(name)
        parent.handlers.clear()
        parent.propagate = True
        parent.setLevel(logging.NOTSET)
    return handler
