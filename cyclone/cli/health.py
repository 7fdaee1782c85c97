"""`cyclone healthcheck`: the container image's HEALTHCHECK.

One image runs the server, the engine and the node agent, so the check asks each local
endpoint in turn and is healthy when any answers 200: the server's `/healthcheck`, the
engine's `/healthz` on its metrics port. It runs every few seconds in every pod, so it
imports nothing beyond the standard library (the image's `cyclone` script calls `main`
without loading the rest of the CLI).
"""

import argparse
import sys
from collections.abc import Sequence

DEFAULT_URLS = ("http://127.0.0.1:7099/healthcheck", "http://127.0.0.1:9090/healthz")
DEFAULT_TIMEOUT = 2.0
"""Seconds per URL: with the two defaults the check ends within the image's 5 s timeout."""


def _why(err: BaseException, timeout: float) -> str:
    import socket
    import urllib.error

    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code}"
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def probe(url: str, timeout: float) -> str | None:
    """None when `url` answers 200, else why not (a few words). urllib is imported here,
    not when `cyclone --help` loads this module."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, method="GET"), timeout=timeout) as answer:
            status = answer.status
    except (urllib.error.URLError, OSError, ValueError) as err:
        return _why(err, timeout)
    return None if status == 200 else f"HTTP {status}"


def check(urls: Sequence[str], timeout: float) -> tuple[bool, str]:
    """(healthy, the one line that says so): healthy as soon as one URL answers 200."""
    failures = []
    for url in urls:
        why = probe(url, timeout)
        if why is None:
            return True, f"healthy: {url} answered 200"
        failures.append(f"{url}: {why}")
    return False, "unhealthy: " + "; ".join(failures)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value


def _positive(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {value}")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cyclone healthcheck",
        description="Exit 0 when one of the URLs answers 200, else 1; one line on stderr.")
    parser.add_argument("--url", action="append", type=_http_url, metavar="URL",
                        help="URL to GET, repeatable (default: the server's "
                        f"{DEFAULT_URLS[0]}, then the engine's {DEFAULT_URLS[1]}).")
    parser.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"Seconds to wait for each URL (default {DEFAULT_TIMEOUT:g}).")
    args = parser.parse_args(argv)
    healthy, line = check(args.url or DEFAULT_URLS, args.timeout)
    print(line, file=sys.stderr)
    return 0 if healthy else 1


def register(app) -> None:
    """Adds the command to the CLI; typer is imported here, not for the image's check
    (annotations are evaluated, so this module does not defer them)."""
    import typer

    @app.command(context_settings={"ignore_unknown_options": True,
                                   "allow_extra_args": True, "help_option_names": []},
                 add_help_option=False)
    def healthcheck(ctx: typer.Context) -> None:
        """Exit 0 when the local server or engine answers 200: the image's HEALTHCHECK."""
        raise typer.Exit(main(ctx.args))


if __name__ == "__main__":
    sys.exit(main())
