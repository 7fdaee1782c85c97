"""The list conventions: `start, limit, filter, sort, ascending` → `{metadata, items}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Query

from cyclone.api import keys
from cyclone.kube import errors


@dataclass(frozen=True)
class ListQuery:
    start: int = 0
    limit: int = 0
    filter: str = ""
    sort: str = ""
    ascending: bool = False


def list_query(
    start: int = Query(0, ge=0, le=1_000_000, description="Index of the first item"),
    limit: int = Query(0, ge=0, le=10_000, description="At most this many items (0: all)"),
    filter: str = Query(
        "", max_length=1000,
        description="Comma-separated k=v: name (substring of name or alias), phase, a label "
        "key, or a dotted field path",
    ),
    sort: str = Query(
        "", max_length=200,
        description="Sort key: true/creationTimestamp (default), name, or a dotted field path",
    ),
    ascending: bool = Query(False, description="Ascending order (default: newest first)"),
) -> ListQuery:
    return ListQuery(start, limit, filter, sort, ascending)


def field_at(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _phase(obj: dict) -> str | None:
    status = obj.get("status") or {}
    overall = status.get("overall") if isinstance(status, dict) else None
    if isinstance(overall, dict) and overall.get("phase"):
        return overall.get("phase")
    return status.get("phase") if isinstance(status, dict) else None


def _matches(obj: dict, key: str, value: str) -> bool:
    meta = obj.get("metadata") or {}
    if key == "name":
        alias = (meta.get("annotations") or {}).get(keys.ANNOTATION_ALIAS, "")
        needle = value.lower()
        name = str(meta.get("name") or obj.get("name") or obj.get("title") or "")
        return needle in name.lower() or needle in alias.lower()
    if key == "phase":
        return (_phase(obj) or "").lower() == value.lower()
    labels = meta.get("labels") or {}
    if key in labels or "/" in key:
        return labels.get(key) == value
    found = field_at(obj, key)
    if found is None:
        return False
    if isinstance(found, bool):
        return str(found).lower() == value.lower()
    return str(found) == value


def parse_filter(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise errors.BadRequest(f"invalid filter {part!r}: expected key=value")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _sort_key(path: str):
    def key(obj: dict) -> tuple:
        value = field_at(obj, path)
        return (value is None, str(value) if value is not None else "")

    return key


def paginate(items: list[dict], query: ListQuery) -> dict:
    """Filter, sort and cut a list of objects into the list answer."""
    for key, value in parse_filter(query.filter):
        items = [obj for obj in items if _matches(obj, key, value)]
    sort = query.sort.strip()
    if sort in ("", "true", "false", "creationTimestamp"):
        path = "metadata.creationTimestamp"
    elif sort == "name":
        path = "metadata.name"
    else:
        path = sort
    items = sorted(items, key=lambda o: field_at(o, "metadata.name") or "")
    items = sorted(items, key=_sort_key(path), reverse=not query.ascending)
    total = len(items)
    window = items[query.start:]
    if query.limit:
        window = window[: query.limit]
    return {"metadata": {"total": total, "itemsLength": len(window)}, "items": window}
