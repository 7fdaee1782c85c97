"""Read-only JSON objects: what the embedded store shares between its cache and watchers.

The store keeps each current object parsed, and every watcher of a change gets that same
object instead of parsing a copy of its own. So nobody may change it: `FrozenDict` and
`FrozenList` are `dict` and `list` subclasses (every reader, `isinstance` check, orjson,
`json` and pydantic take them as they are) whose mutating methods raise `TypeError`.
`copy.deepcopy` of one gives plain, mutable containers, the way to get a copy to edit;
`dict(obj)` or `{**obj}` gives a mutable top level over the same read-only parts.

A frozen container holds only frozen containers, so `freeze` stops at the first one it
meets: freezing an object built from a frozen one (a patch applied copy-on-write) costs
what was changed, not the size of the object.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import orjson

ENFORCE_VARIABLE = "CYCLONE_READ_ONLY_OBJECTS"
_enforced = os.environ.get(ENFORCE_VARIABLE, "") not in ("", "0")


def enforced() -> bool:
    """Whether `freeze` and `parse` build read-only containers (else plain ones, shared
    all the same)."""
    return _enforced


def set_enforced(on: bool) -> None:
    global _enforced
    _enforced = on


@contextmanager
def enforcing(on: bool = True) -> Iterator[None]:
    before = _enforced
    set_enforced(on)
    try:
        yield
    finally:
        set_enforced(before)


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        f"{type(self).__name__} is read-only: it is shared with the store and other watchers; "
        "change a copy (copy.deepcopy) instead"
    )


def _plain_copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


class FrozenDict(dict):
    """A JSON object that raises on every change."""

    __slots__ = ()

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return _plain_copy(self)

    def __reduce__(self) -> tuple:
        return (dict, (dict(self),))


class FrozenList(list):
    """A JSON array that raises on every change."""

    __slots__ = ()

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list:
        return list(self)

    def __deepcopy__(self, memo: dict) -> list:
        return _plain_copy(self)

    def __reduce__(self) -> tuple:
        return (list, (list(self),))


_FROZEN = (FrozenDict, FrozenList)


def freeze(value: Any) -> Any:
    """`value` with every plain dict and list in it made read-only (new containers; the
    plain ones given are left as they are, frozen ones are taken as they are); `value`
    itself when read-only objects are not enforced."""
    if not _enforced:
        return value
    kind = type(value)
    if kind is dict:
        return FrozenDict({
            key: freeze(item) if type(item) in (dict, list) else item
            for key, item in value.items()
        })
    if kind is list:
        return FrozenList([
            freeze(item) if type(item) in (dict, list) else item for item in value
        ])
    return value


def _freeze_parsed(value: Any) -> Any:
    """`freeze` for containers nobody else holds: plain children are replaced in place
    before the copy, which saves building each container twice."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(item) in (dict, list):
                value[key] = _freeze_parsed(item)
        return FrozenDict(value)
    if kind is list:
        return FrozenList([
            _freeze_parsed(item) if type(item) in (dict, list) else item for item in value
        ])
    return value


def parse(text: str | bytes) -> Any:
    """JSON text as a read-only object (a plain one when that is not enforced)."""
    parsed = orjson.loads(text)
    return _freeze_parsed(parsed) if _enforced else parsed


def is_frozen(value: Any) -> bool:
    return isinstance(value, _FROZEN)
