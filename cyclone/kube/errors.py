"""Typed errors of the Cluster protocol, mirroring the Kubernetes Status reasons."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered by a cluster. `code` is the HTTP status, `reason` the Status reason."""

    code: int = 500
    reason: str = "InternalError"

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Gone(ApiError):
    """The requested resourceVersion is too old (compacted away): re-list."""

    code = 410
    reason = "Expired"


class Invalid(ApiError):
    code = 422
    reason = "Invalid"


class TooManyRequests(ApiError):
    code = 429
    reason = "TooManyRequests"


class Unavailable(ApiError):
    """The cluster could not be reached or did not answer."""

    code = 503
    reason = "ServiceUnavailable"


_BY_REASON: dict[str, type[ApiError]] = {
    cls.reason: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed,
                AlreadyExists, Conflict, Gone, Invalid, TooManyRequests, Unavailable)
}
_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    409: Conflict, 410: Gone, 422: Invalid, 429: TooManyRequests, 503: Unavailable,
}


def error_from_status(status: dict) -> ApiError:
    """Build the typed error for a Kubernetes `Status` object."""
    reason = status.get("reason") or ""
    code = int(status.get("code") or 500)
    message = status.get("message") or reason or f"HTTP {code}"
    if reason == "Gone":
        reason = "Expired"
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or ApiError
    err = cls(message, details=status.get("details") or {})
    if cls is ApiError:
        err.code = code
        err.reason = reason or "InternalError"
    return err


def status_for_error(err: ApiError) -> dict:
    """The Kubernetes `Status` object describing an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": err.message,
        "reason": err.reason,
        "details": err.details,
        "code": err.code,
    }
