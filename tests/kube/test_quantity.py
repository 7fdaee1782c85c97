from decimal import Decimal

import pytest

from cyclone.kube.quantity import QuantityError, format_quantity, is_binary, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", Decimal("0.5")), ("1Gi", Decimal(2**30)), ("2", Decimal(2)),
     ("1e3", Decimal(1000)), ("100Mi", Decimal(100 * 2**20)), ("1.5", Decimal("1.5")),
     ("2k", Decimal(2000)), ("3M", Decimal(3_000_000)), ("250n", Decimal("0.00000025")),
     (".5", Decimal("0.5")), (4, Decimal(4))],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Xi", "1.2.3", "m"])
def test_malformed_quantities_are_rejected(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("value", "binary", "text"),
    [(Decimal("0.5"), False, "500m"), (Decimal(2), False, "2"), (Decimal(2**30), True, "1Gi"),
     (Decimal(3000), False, "3k"), (Decimal(0), False, "0"), (Decimal("1.5"), False, "1500m"),
     (Decimal(1500), True, "1500")],
)
def test_format_quantity(value: Decimal, binary: bool, text: str) -> None:
    assert format_quantity(value, binary=binary) == text


def test_round_trip_and_binary_detection() -> None:
    assert parse_quantity(format_quantity(parse_quantity("128Mi"), binary=True)) == 128 * 2**20
    assert is_binary("64Mi") and not is_binary("64M")
