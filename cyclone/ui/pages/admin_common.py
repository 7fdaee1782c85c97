"""What the admin pages share: the admin-only check, the submitted form, and a refusal of
the server's functions turned into field messages."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from cyclone.kube import errors
from cyclone.ui.deps import UiSession
from cyclone.ui.pages.admin_forms import FORM, message_problems, validation_problems


def require_admin(session: UiSession) -> None:
    """Admin pages do not exist for a tenant session."""
    if not session.admin:
        raise errors.NotFound("page not found")


async def submitted(request: Request) -> FormData:
    return await request.form()


def text_fields(form: FormData) -> dict[str, str]:
    """The form's text inputs (a repeated name keeps its first value)."""
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(key, value)
    return values


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def problems_of(exc: Exception, fields: Mapping[str, str]) -> tuple[int, dict[str, str]]:
    """(status, {input name: message}) of a refusal by the server's functions; anything
    else is re-raised."""
    if isinstance(exc, RequestValidationError):
        return 422, validation_problems(exc.errors(), fields)
    if isinstance(exc, ValidationError):
        return 422, validation_problems(exc, fields)
    if isinstance(exc, errors.ApiError):
        return exc.code, message_problems(exc.message, fields)
    raise exc


def one_line(exc: errors.ApiError) -> str:
    return " ".join(str(exc.message).split()) or exc.reason


__all__ = ["FORM", "one_line", "problems_of", "require_admin", "see_other", "submitted",
           "text_fields"]
