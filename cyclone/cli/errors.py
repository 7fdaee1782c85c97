"""The CLI's one kind of failure, apart from the HTTP client so that a command module can
raise it without importing httpx at start."""

from __future__ import annotations


class CliError(Exception):
    """A failure to report as `error: <message>`; `exit_code` is the process status."""

    def __init__(self, message: str, *, exit_code: int = 1, status: int | None = None,
                 causes: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status
        self.causes = causes or []
        """The server's ``details.causes`` of a refusal: ``{field, message}`` each."""
