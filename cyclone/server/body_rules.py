"""The api's rules (`cyclone.api.validation.validate_model`) applied to a request body.

A body that parses but breaks a rule is answered like one that does not parse: 422 with
one ``details`` entry per field, at ``body.<path>``.
"""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError

from cyclone.api.common import CycloneModel
from cyclone.api.validation import validate_model


def check_rules(body: CycloneModel) -> None:
    """Raise `RequestValidationError` (422) for every rule `body` breaks."""
    problems = validate_model(body)
    if problems:
        raise RequestValidationError([
            {"type": "value_error", "loc": ("body", *p.path.split(".")), "msg": p.message}
            for p in problems])
