"""Turn every failure into a JSON `{message, reason}` with the right HTTP status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cyclone.kube import errors

log = logging.getLogger(__name__)


def error_body(message: str, reason: str, details: object | None = None) -> dict:
    body: dict = {"message": message, "reason": reason}
    if details:
        body["details"] = details
    return body


def _field_errors(errs: list) -> list[dict]:
    out = []
    for err in errs:
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"field": ".".join(loc), "message": str(err.get("msg", ""))})
    return out


def _summary(fields: list[dict]) -> str:
    head = "; ".join(f"{f['field'] or '(body)'}: {f['message']}" for f in fields[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    return f"invalid request: {head}{more}"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.code == 401 else None
    return JSONResponse(
        error_body(exc.message, exc.reason, exc.details or None), exc.code, headers=headers
    )


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = _field_errors(list(exc.errors()))
    return JSONResponse(error_body(_summary(fields), "Invalid", fields), 422)


async def _model_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    fields = _field_errors(list(exc.errors()))
    return JSONResponse(error_body(_summary(fields), "Invalid", fields), 422)


async def _value_error(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body(str(exc) or "invalid request", "BadRequest"), 400)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    reason = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "Error")
    return JSONResponse(
        error_body(str(exc.detail), reason), exc.status_code, headers=exc.headers
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error while serving a request", exc_info=exc)
    return JSONResponse(error_body("internal error", "InternalError"), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(ValidationError, _model_validation)
    app.add_exception_handler(ValueError, _value_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
