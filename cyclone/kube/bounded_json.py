"""JSON from an API server, whatever its nesting.

kube-apiserver stores custom objects nested thousands of levels deep (Go's decoder allows
10,000), and a tenant with kubectl can write one. Python's decoder recurses and fails on
such a document, which would make every list of that kind fail and stall the controllers of
all tenants. Documents the recursive decoder cannot read are parsed iteratively instead,
and any value nested deeper than `MAX_DEPTH` is replaced by None: the object stays
readable, only its absurd part is lost.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring
from typing import Any

MAX_DEPTH = 200
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads``, except that a document too deep for it is still read (see module)."""
    try:
        return json.loads(text)
    except RecursionError:
        pass
    if isinstance(text, bytes):
        text = text.decode()
    return _loads_iteratively(text, max_depth)


def _scalar(text: str, at: int) -> tuple[Any, int]:
    if text.startswith('"', at):
        return scanstring(text, at + 1)
    for word, value in _LITERALS.items():
        if text.startswith(word, at):
            return value, at + len(word)
    match = _NUMBER.match(text, at)
    if not match:
        raise ValueError(f"invalid JSON at offset {at}")
    number = match.group()
    return (float(number) if any(c in number for c in ".eE") else int(number)), match.end()


def _loads_iteratively(text: str, max_depth: int) -> Any:
    """A JSON parser with an explicit stack. Each frame is ``[is_object, container, key]``;
    the container is None for one opened deeper than ``max_depth`` (read, then dropped)."""
    stack: list[list[Any]] = []
    at = 0
    while True:
        at = _WHITESPACE.match(text, at).end()
        if at >= len(text):
            raise ValueError("unexpected end of JSON")
        char = text[at]
        frame = stack[-1] if stack else None
        if frame is not None and char in "}]" and frame[0] == (char == "}"):
            stack.pop()
            value, at = frame[1], at + 1
        elif frame is not None and char == ",":
            at += 1
            continue
        elif frame is not None and frame[0] and frame[2] is None:
            if char != '"':
                raise ValueError(f"expected a key at offset {at}")
            key, at = scanstring(text, at + 1)
            at = _WHITESPACE.match(text, at).end()
            if text[at:at + 1] != ":":
                raise ValueError(f"expected ':' at offset {at}")
            frame[2] = key
            at += 1
            continue
        elif char in "{[":
            cut = frame is not None and (frame[1] is None or len(stack) >= max_depth)
            container = None if cut else ({} if char == "{" else [])
            stack.append([char == "{", container, None])
            at += 1
            continue
        else:
            value, at = _scalar(text, at)
        if not stack:
            if _WHITESPACE.match(text, at).end() != len(text):
                raise ValueError(f"extra data at offset {at}")
            return value
        parent = stack[-1]
        if parent[1] is not None:
            if parent[0]:
                parent[1][parent[2]] = value
            else:
                parent[1].append(value)
        parent[2] = None
