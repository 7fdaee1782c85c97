from datetime import UTC, datetime, timedelta, timezone

import pytest

from cyclone.engine.core.timelayout import format_time

MOMENT = datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("", "2026-01-02T03:04:05Z"),
        ("RFC3339", "2026-01-02T03:04:05Z"),
        ("RFC3339Nano", "2026-01-02T03:04:05.12Z"),
        ("DateTime", "2026-01-02 03:04:05"),
        ("DateOnly", "2026-01-02"),
        ("Kitchen", "3:04AM"),
        ("ANSIC", "Fri Jan  2 03:04:05 2026"),
        ("RFC1123Z", "Fri, 02 Jan 2026 03:04:05 +0000"),
        ("20060102150405", "20260102030405"),
        ("2006.01.02", "2026.01.02"),
        ("15:04:05.000", "03:04:05.120"),
        ("Monday, January 2", "Friday, January 2"),
        ("%Y-%m-%d %H:%M", "2026-01-02 03:04"),
        ("build-%Y%m%d", "build-20260102"),
    ],
)
def test_format_time(layout, expected):
    assert format_time(MOMENT, layout) == expected


def test_offsets_follow_the_time_zone():
    moment = MOMENT.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert format_time(moment, "RFC3339") == "2026-01-02T08:34:05+05:30"
    assert format_time(moment, "-0700") == "+0530"


def test_naive_times_are_utc():
    assert format_time(datetime(2026, 1, 2, 3, 4, 5), "RFC3339") == "2026-01-02T03:04:05Z"
