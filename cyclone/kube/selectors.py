"""Label and field selectors in the Kubernetes syntax, parsed once and matched purely
(the label grammar is `cyclone.api.selectors`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cyclone.api.selectors import LabelSelector, SelectorError
from cyclone.api.selectors import parse_label_selector as parse_labels
from cyclone.kube.errors import BadRequest


def parse_label_selector(text: str | None) -> LabelSelector:
    """`cyclone.api.selectors.parse_label_selector`, refusing a bad selector as a
    `BadRequest`, as the API server does."""
    try:
        return parse_labels(text)
    except SelectorError as exc:
        raise BadRequest(str(exc)) from None


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


def selectable_fields(kind: str) -> tuple[str, ...]:
    """The fields a field selector may name for objects of `kind`."""
    return _COMMON_FIELDS + (_POD_FIELDS if kind == "Pod" else ())


def parse_field_selector(text: str | None, kind: str = "") -> FieldSelector:
    """Parse `metadata.name=x,spec.nodeName!=y`; unsupported fields are a `BadRequest`."""
    if not text or not text.strip():
        return FieldSelector()
    allowed = selectable_fields(kind)
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
