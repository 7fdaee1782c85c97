"""Lists read a page at a time (`--chunk-size`), as kubectl reads them.

The runs route pages at the cluster when asked with `continue` (pages in name order, each
answering the token of the next). The pages are put back in the order of the whole list
(newest first, names ascending among runs of the same second), so chunking changes what
each request costs, never what is printed. A server that does not page answers the whole
list with `metadata.total`; it is then read whole. A token that expires mid-way (410) starts
the listing again, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cyclone.cli.errors import CliError

if TYPE_CHECKING:
    from cyclone.cli.client import CycloneClient

def in_whole_list_order(items: list[dict]) -> list[dict]:
    """Newest first by creationTimestamp, names ascending among equals: the server's order
    of the whole list."""
    def created(obj: dict) -> tuple[bool, str]:
        stamp = (obj.get("metadata") or {}).get("creationTimestamp")
        return stamp is None, str(stamp or "")

    by_name = sorted(items, key=lambda obj: (obj.get("metadata") or {}).get("name") or "")
    return sorted(by_name, key=created, reverse=True)


def _pages(client: CycloneClient, path: str, chunk_size: int) -> list[dict] | None:
    """Every item, page by page; None when the server answered the whole list instead."""
    items: list[dict] = []
    token = ""
    while True:
        answer: Any = client.get(path, limit=chunk_size, **{"continue": token})
        if not isinstance(answer, dict):
            return None
        meta = answer.get("metadata") or {}
        if "continue" not in meta:
            return None
        items.extend(answer.get("items") or [])
        token = meta.get("continue") or ""
        if not token:
            return items


def paged_items(client: CycloneClient, path: str, chunk_size: int) -> list[dict]:
    """Every item of a runs list route, `chunk_size` per request (0: one request)."""
    if chunk_size <= 0:
        return client.items(path)
    for attempt in range(2):
        try:
            items = _pages(client, path, chunk_size)
        except CliError as err:
            if err.status != 410 or attempt:
                raise
            continue
        if items is None:
            return client.items(path)
        return in_whole_list_order(items)
    raise AssertionError("unreachable")
