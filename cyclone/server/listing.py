"""The list conventions: `start, limit, filter, sort, ascending` → `{metadata, items}`.

A list route answers from the whole list: it filters, sorts and cuts every object of its
scope (`paginate`). The runs route can also page at the cluster, Kubernetes' way: a request
that carries `continue` (empty for the first page) is one `limit`/`continue` list of the
cluster (`cluster_page_selector`, `cluster_page`), so a page costs the page whatever the
number of runs stored. Such pages come in the cluster's order (name, ascending) and take
the filters the cluster applies: label filters. `start`, other sorts and the `name`,
`phase` and field-path filters need the whole list, and are refused with `continue`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import Query

from cyclone.api import keys
from cyclone.kube import errors
from cyclone.kube.protocol import ObjectList


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


def continue_query(
    continue_: str | None = Query(
        None, alias="continue", max_length=4096,
        description="Page at the cluster: empty for the first page, then the "
        "`metadata.continue` of the page before (pages come in name order; `limit` is the "
        "page size, 0 for all the rest; only label filters apply)",
    ),
) -> str | None:
    return continue_


_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_WHOLE_LIST_FILTERS = ("name", "phase")


def _is_label_filter(key: str) -> bool:
    return key not in _WHOLE_LIST_FILTERS and ("/" in key or "." not in key)


def cluster_page_selector(query: ListQuery, scope_selector: str | None) -> str | None:
    """The label selector of a page read at the cluster: the scope's, and the query's
    label filters (a filter key with a `/` or without a `.`). BadRequest for what needs
    the whole list."""
    whole_list = "; list without continue to use it"
    if query.start:
        raise errors.BadRequest("start does not combine with continue: pages at the cluster "
                                "go on from the continue token" + whole_list)
    sort = query.sort.strip()
    if sort not in ("", "name") or (sort == "name" and not query.ascending):
        raise errors.BadRequest(f"sort {sort!r}{'' if query.ascending else ' descending'} "
                                "needs the whole list: pages at the cluster come in name "
                                "order, ascending" + whole_list)
    terms = [scope_selector] if scope_selector else []
    for key, value in parse_filter(query.filter):
        if not _is_label_filter(key):
            raise errors.BadRequest(f"filter {key!r} needs the whole list: with continue, "
                                    "only label filters apply" + whole_list)
        if (len(key) > 317 or len(value) > 63 or not _LABEL_KEY.fullmatch(key)
                or not _LABEL_VALUE.fullmatch(value)):
            raise errors.BadRequest(f"filter {key}={value!r}: not a label key and value")
        terms.append(f"{key}={value}")
    return ",".join(terms) or None


def cluster_page(listed: ObjectList) -> dict:
    """The list answer of one page read at the cluster: `metadata.continue` is the token
    of the next page, empty on the last (no `total`: counting would read the whole list)."""
    return {"metadata": {"itemsLength": len(listed.items), "continue": listed.continue_},
            "items": listed.items}
