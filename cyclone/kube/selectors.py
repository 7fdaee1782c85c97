"""Label and field selectors in the Kubernetes syntax, parsed once and matched purely."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from cyclone.kube.errors import BadRequest

Operator = Literal["=", "!=", "in", "notin", "exists", "!exists"]


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(req.matches(labels or {}) for req in self.requirements)


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _parse_requirement(term: str) -> Requirement:
    if match := _SET_RE.match(term):
        values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
        return Requirement(match["key"], match["op"], values)  # type: ignore[arg-type]
    if match := _EQ_RE.match(term):
        op: Operator = "!=" if match["op"] == "!=" else "="
        return Requirement(match["key"], op, (match["value"],))
    if match := _EXISTS_RE.match(term):
        return Requirement(match["key"], "!exists" if match["neg"] else "exists")
    raise BadRequest(f"unable to parse requirement: {term.strip()!r}")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `a=b,c!=d,e in (f,g),!h,i`; an empty string selects everything."""
    if not text or not text.strip():
        return LabelSelector()
    return LabelSelector(tuple(_parse_requirement(term) for term in _split_top_level(text)))


def matches(labels: Mapping[str, str] | None, selector: LabelSelector | str | None) -> bool:
    """Whether labels satisfy a selector (parsed or text)."""
    if selector is None or isinstance(selector, str):
        selector = parse_label_selector(selector)
    return selector.matches(labels)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negate: bool
    value: str


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict) -> bool:
        for req in self.requirements:
            actual = field_value(obj, req.field)
            if (actual == req.value) == req.negate:
                return False
        return True


_FIELD_RE = re.compile(r"^\s*(?P<field>[A-Za-z.]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*?)\s*$")
_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_POD_FIELDS = ("spec.nodeName", "status.phase")


def field_value(obj: dict, path: str) -> str:
    current: object = obj
    for part in path.split("."):
        current = current.get(part) if isinstance(current, dict) else None
    return "" if current is None else str(current)


def parse_field_selector(text: str | None, kind: str = "") -> FieldSelector:
    """Parse `metadata.name=x,spec.nodeName!=y`; unsupported fields are a `BadRequest`."""
    if not text or not text.strip():
        return FieldSelector()
    allowed = _COMMON_FIELDS + (_POD_FIELDS if kind == "Pod" else ())
    reqs = []
    for term in text.split(","):
        match = _FIELD_RE.match(term)
        if not match:
            raise BadRequest(f"invalid field selector: {term.strip()!r}")
        if match["field"] not in allowed:
            raise BadRequest(
                f'field label not supported: {match["field"]}'
                + (f" for {kind}" if kind else "")
            )
        reqs.append(FieldRequirement(match["field"], match["op"] == "!=", match["value"]))
    return FieldSelector(tuple(reqs))


ObjectFilter = Callable[[dict], bool]


def object_filter(
    label_selector: str | None, field_selector: str | None, kind: str = ""
) -> ObjectFilter:
    """One predicate for both selectors, parsed once."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector, kind)
    return lambda obj: labels.matches(obj.get("metadata", {}).get("labels")) and fields.matches(
        obj
    )
