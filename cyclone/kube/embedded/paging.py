"""Pages of a list on the embedded cluster: `limit` and `continue` as kube-apiserver has them.

The continue token is the one kube-apiserver writes: base64url (unpadded) of
`{"v": "meta.k8s.io/v1", "rv": N, "start": KEY}`, where N is the resourceVersion of the
list's first page and KEY is where the next page starts, relative to the list: `name\\0`
within a namespace, `namespace/name\\0` across namespaces (the `\\0` meaning "just past
this key"). A token is checked as kube-apiserver checks it (a clean relative key, a
positive version) and can only ever move within the list it is sent with: the namespace
and the selectors come from the request, never from the token.

etcd serves every page of a list at the first page's revision. The SQLite store keeps no
old versions, so here the pages after the first show the objects as they are when each
page is read: an object that exists throughout appears exactly once, in key order; one
created between pages appears if its key lies ahead, one deleted between pages does not.
Every page still reports the first page's resourceVersion, so a client that watches from
it after the last page misses no change. A token expires (410) once its version has left
the change log, the point at which a watch from it would be refused too, as a
kube-apiserver's does once etcd has compacted that revision. A negative version, as in the
token kube-apiserver offers with that 410, goes on from the current state.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from collections.abc import Callable

from cyclone.kube.embedded import jsontext
from cyclone.kube.embedded.store import Transaction
from cyclone.kube.errors import BadRequest, Gone
from cyclone.kube.kinds import Kind
from cyclone.kube.protocol import ObjectList
from cyclone.kube.selectors import parse_label_selector

TOKEN_VERSION = "meta.k8s.io/v1"
FIRST_BATCH = 64
LARGEST_BATCH = 2048
EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter."
)


def encode_continue(resource_version: int, last_key: str) -> str:
    """The token of the page after the object at `last_key`."""
    text = json.dumps({"v": TOKEN_VERSION, "rv": resource_version, "start": last_key + "\0"},
                      separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    """(resourceVersion, start key) of a token; BadRequest when it is not one."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"continue key is not valid: {exc}") from None
    if not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
        raise _invalid("continue key is not valid: server does not recognize this encoding")
    rv, start = data.get("rv"), data.get("start")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv == 0:
        raise _invalid("continue key is not valid: incorrect encoded start resourceVersion "
                       f"(version {TOKEN_VERSION})")
    if not isinstance(start, str) or not start:
        raise _invalid(f"continue key is not valid: encoded start key empty (version "
                       f"{TOKEN_VERSION})")
    key = start if start.startswith("/") else "/" + start
    if key.startswith("//") or posixpath.normpath(key) != key:
        raise _invalid(f"continue key is not valid: {start!r}")
    return rv, key[1:]


def _invalid(message: str) -> BadRequest:
    return BadRequest(f"invalid continue token: {message}")


_PLAIN_TEXT = re.compile(r"[A-Za-z0-9._/-]+")


def label_needles(label_selector: str | None) -> tuple[str, ...]:
    """Text that the stored JSON of every object the selector accepts holds: `"key":"value"`
    for each `key=value` of the selector (the store writes compact JSON, and label keys and
    values have no character JSON escapes). Rows without it are skipped unparsed, so a
    page of a workflow's runs costs its own runs, not every run of the namespace."""
    return tuple(
        f'"{req.key}":"{req.values[0]}"'
        for req in parse_label_selector(label_selector).requirements
        if req.operator == "=" and len(req.values) == 1 and _PLAIN_TEXT.fullmatch(req.key)
        and _PLAIN_TEXT.fullmatch(req.values[0])
    )


def _position(start: str, across_namespaces: bool) -> tuple[tuple[str, str], bool]:
    """The (namespace, name) key a start key stands for, and whether to include it."""
    inclusive = not start.endswith("\0")
    start = start.rstrip("\0")
    if not across_namespaces:
        return ("", start), inclusive
    namespace, _, name = start.partition("/")
    return (namespace, name), inclusive


def read_page(
    tx: Transaction,
    kind: Kind,
    namespace: str | None,
    accept: Callable[[dict], bool],
    limit: int | None,
    continue_: str | None,
    needles: tuple[str, ...] = (),
) -> ObjectList:
    """One page of `limit` accepted objects (all the rest when no limit), in key order.
    `needles`: text every accepted object's stored JSON holds (`label_needles`)."""
    across_namespaces = kind.namespaced and namespace is None
    current = tx.current_rv()
    if continue_:
        list_rv, start = decode_continue(continue_)
        if list_rv < 0:
            list_rv = current
        if list_rv > current:
            raise _invalid(f"continue key is not valid: resourceVersion {list_rv} is newer "
                           "than the store")
        if list_rv < tx.compacted_rv():
            raise Gone(EXPIRED)
        key, inclusive = _position(start, across_namespaces)
    else:
        list_rv, key, inclusive = current, ("", ""), True
    wanted = limit if limit and limit > 0 else None
    items: list[dict] = []
    batch = FIRST_BATCH if wanted is None else min(max(wanted + 1, FIRST_BATCH), LARGEST_BATCH)
    while True:
        rows = tx.list_from(kind, namespace, key, inclusive=inclusive, limit=batch,
                            containing=needles)
        for index, (row_namespace, name, body) in enumerate(rows):
            obj = jsontext.decode(body)
            if accept(obj):
                items.append(obj)
            if wanted is not None and len(items) == wanted:
                more = index + 1 < len(rows) or bool(
                    tx.list_from(kind, namespace, (row_namespace, name), inclusive=False,
                                 limit=1, containing=needles))
                last = f"{row_namespace}/{name}" if across_namespaces else name
                token = encode_continue(list_rv, last) if more else ""
                return ObjectList(items, str(list_rv), continue_=token)
        if len(rows) < batch:
            return ObjectList(items, str(list_rv))
        last_namespace, last_name, _ = rows[-1]
        key, inclusive = (last_namespace, last_name), False
        batch = min(batch * 2, LARGEST_BATCH)
