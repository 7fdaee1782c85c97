"""Kubernetes label selectors (`a=b,c!=d,e in (f,g),!h,i`), parsed once and matched purely.

The one parser of the grammar: the clusters filter lists and watches with it
(`cyclone.kube.selectors`), and the CLI its `-l`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


class SelectorError(ValueError):
    """A selector that does not parse; the message names the term."""


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
    raise SelectorError(f"unable to parse requirement: {term.strip()!r}")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `a=b,c!=d,e in (f,g),!h,i`; an empty string selects everything."""
    if not text or not text.strip():
        return LabelSelector()
    return LabelSelector(tuple(_parse_requirement(term) for term in _split_top_level(text)))
