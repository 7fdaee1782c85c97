"""Kubernetes resource quantities (`500m`, `1Gi`, `2`, `1e3`) as exact Decimals."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
_PATTERN = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)
_BINARY_DESC = sorted(_BINARY.items(), key=lambda item: -item[1])
_DECIMAL_UP = (("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3))


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity; raises `QuantityError` when it is malformed."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = str(value).strip()
    match = _PATTERN.match(text)
    if not match:
        raise QuantityError(f"quantities must match the regular expression: {text!r}")
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:
        raise QuantityError(f"invalid quantity {text!r}") from exc
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def is_binary(value: str | int | float) -> bool:
    """Whether a quantity was written with a binary (`Ki`, `Mi` …) suffix."""
    return isinstance(value, str) and value.strip()[-2:] in _BINARY


def format_quantity(value: Decimal, *, binary: bool = False) -> str:
    """The canonical text of a quantity: `500m`, `2`, `1Gi` (binary), `3k`."""
    value = Decimal(value)
    if value == 0:
        return "0"
    if value != value.to_integral_value():
        milli = value * 1000
        if milli == milli.to_integral_value():
            return f"{int(milli)}m"
        nano = (value * Decimal("1e9")).to_integral_value()
        return f"{int(nano)}n"
    integer = int(value)
    if binary:
        for suffix, factor in _BINARY_DESC:
            if integer % factor == 0:
                return f"{integer // factor}{suffix}"
        return str(integer)
    for suffix, exponent in _DECIMAL_UP:
        if integer % (10**exponent) == 0:
            return f"{integer // 10**exponent}{suffix}"
    return str(integer)
