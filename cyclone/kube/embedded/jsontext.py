"""The JSON text objects are stored and copied as: compact, through orjson.

Every write encodes the whole object and every watcher and read parses it, so for large
objects (a WorkflowRun of thousands of stages) this is most of the store's work; orjson
does it several times faster than the standard library. One difference: orjson writes
NaN and infinities as `null`, where Kubernetes would refuse the request.
"""

from __future__ import annotations

from typing import Any

import orjson

from cyclone.kube.errors import BadRequest

_OPTIONS = orjson.OPT_NON_STR_KEYS


def encode(obj: Any) -> str:
    """Compact JSON text of `obj`; BadRequest when it is not JSON data."""
    try:
        return orjson.dumps(obj, option=_OPTIONS).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise BadRequest(f"the object is not valid JSON: {exc}") from exc


def decode(text: str | bytes) -> Any:
    return orjson.loads(text)
