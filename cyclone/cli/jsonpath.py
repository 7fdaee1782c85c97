"""kubectl's JSONPath templates: `{.metadata.name}`, `{.items[*].metadata.name}`,
`{range .items[*]}{.metadata.name}{"\\n"}{end}`, filters `[?(@.name=="x")]`.

The JSONPath libraries on PyPI evaluate paths but not kubectl's template language (text
around `{…}` actions, `range`/`end`, quoted literals), which is what `-o jsonpath=` takes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


class JsonPathError(ValueError):
    """A template that cannot be parsed."""


_STEP = re.compile(r"\.\.(?P<rec>[^.\[\]]+)|\.(?P<key>[^.\[\]]+)|\[(?P<bracket>[^\]]*)\]")
_FILTER = re.compile(r"^\?\(@(?P<path>[^=!<>]*?)\s*(?:(?P<op>==|!=)\s*(?P<value>.+?))?\s*\)$")
_MISSING = object()


@dataclass(frozen=True)
class _Filter:
    path: tuple
    op: str | None
    value: Any


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _bracket(content: str) -> tuple:
    content = content.strip()
    if content == "*":
        return ("all",)
    if len(content) >= 2 and content[0] == content[-1] and content[0] in "'\"":
        return ("key", content[1:-1])
    if content.startswith("?"):
        match = _FILTER.match(content)
        if not match:
            raise JsonPathError(f"unsupported filter [{content}]")
        value = _literal(match["value"]) if match["op"] else None
        return ("filter", _Filter(parse_path(match["path"] or ""), match["op"], value))
    if ":" in content:
        start, _, end = content.partition(":")
        try:
            return ("slice", int(start) if start.strip() else None,
                    int(end) if end.strip() else None)
        except ValueError:
            raise JsonPathError(f"bad slice [{content}]") from None
    try:
        return ("index", int(content))
    except ValueError:
        raise JsonPathError(f"bad subscript [{content}]") from None


def parse_path(expr: str) -> tuple:
    """The steps of a path such as `.items[*].metadata.name` (a leading `$` or `@` is the
    root or the current node; `metadata.name` is taken as `.metadata.name`)."""
    expr = expr.strip()
    if expr[:1] in ("$", "@"):
        expr = expr[1:]
    if expr[:1].isalnum() or expr[:1] == "_":
        expr = "." + expr
    steps: list[tuple] = []
    position = 0
    while position < len(expr):
        match = _STEP.match(expr, position)
        if not match:
            raise JsonPathError(f"cannot parse {expr[position:]!r}")
        if match["rec"] is not None:
            steps.append(("recursive", match["rec"]))
        elif match["key"] is not None:
            steps.append(("all",) if match["key"] == "*" else ("key", match["key"]))
        else:
            steps.append(_bracket(match["bracket"]))
        position = match.end()
    return tuple(steps)


def _children(node: Any) -> list:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _descendants(node: Any) -> list:
    found = [node]
    for child in _children(node):
        found.extend(_descendants(child))
    return found


def _matches(node: Any, condition: _Filter) -> bool:
    found = evaluate(condition.path, node)
    if condition.op is None:
        return bool(found)
    equal = any(value == condition.value or str(value) == str(condition.value)
                for value in found)
    return equal if condition.op == "==" else not equal


def _step(step: tuple, node: Any) -> list:
    kind = step[0]
    if kind == "key":
        return [node[step[1]]] if isinstance(node, dict) and step[1] in node else []
    if kind == "all":
        return _children(node)
    if kind == "recursive":
        return [d[step[1]] for d in _descendants(node) if isinstance(d, dict) and step[1] in d]
    if kind == "index":
        if isinstance(node, list) and -len(node) <= step[1] < len(node):
            return [node[step[1]]]
        return []
    if kind == "slice":
        return list(node[step[1]:step[2]]) if isinstance(node, list) else []
    return [item for item in _children(node) if _matches(item, step[1])]


def evaluate(steps: tuple, node: Any) -> list:
    """Every value the path reaches from `node` (none when a key is missing)."""
    nodes = [node]
    for step in steps:
        nodes = [found for current in nodes for found in _step(step, current)]
    return nodes


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


@dataclass
class _Node:
    kind: str  # text, path, range
    value: Any = None
    root: bool = False
    body: list[_Node] = field(default_factory=list)


def _actions(template: str) -> list[tuple[str, str]]:
    """The template as ("text", …) and ("action", …) pieces; quotes may hold braces."""
    pieces: list[tuple[str, str]] = []
    position = 0
    while position < len(template):
        start = template.find("{", position)
        if start < 0:
            pieces.append(("text", template[position:]))
            break
        if start > position:
            pieces.append(("text", template[position:start]))
        index, quote = start + 1, ""
        while index < len(template):
            char = template[index]
            if quote:
                if char == "\\":
                    index += 1
                elif char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char == "}":
                break
            index += 1
        if index >= len(template):
            raise JsonPathError(f"unclosed action in {template!r}")
        pieces.append(("action", template[start + 1:index].strip()))
        position = index + 1
    return pieces


def parse_template(template: str) -> list[_Node]:
    root: list[_Node] = []
    stack = [root]
    for kind, text in _actions(template):
        if kind == "text":
            stack[-1].append(_Node("text", text))
        elif text == "end":
            if len(stack) == 1:
                raise JsonPathError("{end} without {range}")
            stack.pop()
        elif text.startswith("range "):
            expr = text[len("range "):].strip()
            node = _Node("range", parse_path(expr), root=expr.startswith("$"))
            stack[-1].append(node)
            stack.append(node.body)
        elif text[:1] in "'\"" and text[-1:] == text[:1] and len(text) >= 2:
            try:
                literal = json.loads('"' + text[1:-1].replace('"', '\\"') + '"')
            except ValueError:
                literal = text[1:-1]
            stack[-1].append(_Node("text", literal))
        elif text:
            stack[-1].append(_Node("path", parse_path(text), root=text.startswith("$")))
    if len(stack) != 1:
        raise JsonPathError("{range} without {end}")
    return root


def _render(nodes: list[_Node], root: Any, current: Any, out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.value)
        elif node.kind == "path":
            found = evaluate(node.value, root if node.root else current)
            out.append(" ".join(text_of(value) for value in found))
        else:
            found = evaluate(node.value, root if node.root else current)
            if len(found) == 1 and isinstance(found[0], list):
                found = found[0]
            for item in found:
                _render(node.body, root, item, out)


def render(template: str, data: Any) -> str:
    """The template filled from `data`, like `kubectl get -o jsonpath=TEMPLATE`."""
    out: list[str] = []
    _render(parse_template(template), data, data, out)
    return "".join(out)


def first_value(expr: str, data: Any) -> Any:
    """The first value a path (`.metadata.name` or `{.metadata.name}`) reaches, else a
    sentinel that sorts last."""
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    found = evaluate(parse_path(expr), data)
    return found[0] if found else _MISSING


def is_missing(value: Any) -> bool:
    return value is _MISSING
