"""Admission checks of Cyclone objects before they are written."""

from __future__ import annotations

from typing import Any

from cyclone.api.validation import validate_object as field_errors
from cyclone.kube import errors


def validate_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Raise `Invalid` (422) naming every offending field unless `obj` is a valid object."""
    problems = field_errors(obj)
    if problems:
        details = [{"field": p.path, "message": p.message} for p in problems]
        head = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise errors.Invalid(f"invalid {obj.get('kind', 'object')}: {head}{more}",
                             details={"causes": details})
    return obj
