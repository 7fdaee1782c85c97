"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), pure and copy-on-write."""

from __future__ import annotations

import copy
from typing import Any

from cyclone.kube.errors import Invalid


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a merge patch: dicts merge recursively, `null` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def merge_patch_between(old: dict, new: dict) -> dict:
    """The merge patch that turns `old` into `new` (JSON objects): changed keys, nested
    objects as patches of their own, removed keys as `null`. Values shared by both (the
    same object) are skipped without being compared, so a copy that shares its unchanged
    parts with the original is diffed in time proportional to what changed."""
    patch: dict = {}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
            continue
        before = old[key]
        if before is value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            nested = merge_patch_between(before, value)
            if nested:
                patch[key] = nested
        elif before != value:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise Invalid(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list, token: str, *, for_insert: bool) -> int:
    if token == "-" and for_insert:
        return len(container)
    if not token.isdigit():
        raise Invalid(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise Invalid(f"array index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    current = doc
    for token in tokens[:-1]:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_index(current, token, for_insert=False)]
        else:
            raise Invalid(f"path {path!r} does not exist")
    return current


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_insert=False)]
    raise Invalid(f"path {path!r} does not exist")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], for_insert=True), value)
    else:
        raise Invalid(f"path {path!r} does not exist")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise Invalid("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict) and tokens[-1] in parent:
        return doc, parent.pop(tokens[-1])
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, tokens[-1], for_insert=False))
    raise Invalid(f"path {path!r} does not exist")


def json_patch(target: Any, operations: list[dict]) -> Any:
    """Apply RFC 6902 operations (add, remove, replace, test, move, copy) to a copy."""
    doc = copy.deepcopy(target)
    if not isinstance(operations, list):
        raise Invalid("a JSON patch must be a list of operations")
    for op in operations:
        kind, path = op.get("op"), op.get("path")
        if not isinstance(path, str):
            raise Invalid(f"operation {op!r} has no path")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc, _ = _remove(doc, path) if _pointer(path) else (doc, None)
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise Invalid(f"test operation failed at {path!r}")
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise Invalid(f"operation {op!r} has no from")
            if kind == "move":
                doc, value = _remove(doc, source)
            else:
                value = copy.deepcopy(_get(doc, source))
            doc = _add(doc, path, value)
        else:
            raise Invalid(f"unknown JSON patch operation {kind!r}")
    return doc


def apply_patch(target: dict, patch: dict | list, patch_type: str) -> dict:
    """Apply a patch of the given type (`merge`, `strategic` as merge, or `json`)."""
    if patch_type == "json":
        result = json_patch(target, patch)  # type: ignore[arg-type]
    elif patch_type in ("merge", "strategic"):
        if not isinstance(patch, dict):
            raise Invalid("a merge patch must be a JSON object")
        result = merge_patch(target, patch)
    else:
        raise Invalid(f"unsupported patch type {patch_type!r}")
    if not isinstance(result, dict):
        raise Invalid("a patch must leave an object")
    return result
