"""Formatting ``now`` for ``$(timenow:<format>)``.

The format is read as:
- empty → RFC 3339 (``2006-01-02T15:04:05Z07:00``);
- a Go layout name (``RFC3339``, ``RFC3339Nano``, ``RFC1123``, ``RFC1123Z``, ``RFC822``,
  ``RFC822Z``, ``RFC850``, ``ANSIC``, ``UnixDate``, ``RubyDate``, ``Kitchen``, ``Stamp``,
  ``DateTime``, ``DateOnly``, ``TimeOnly``) → that layout;
- a format containing ``%`` → Python ``strftime``;
- anything else → a Go reference layout (``2006-01-02 15:04:05``, ``20060102``, …), whose
  tokens are replaced by the parts of the time; other characters are copied.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

GO_NAMED_LAYOUTS = {
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "RFC3339": "2006-01-02T15:04:05Z07:00",
    "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
    "Kitchen": "3:04PM",
    "Stamp": "Jan _2 15:04:05",
    "DateTime": "2006-01-02 15:04:05",
    "DateOnly": "2006-01-02",
    "TimeOnly": "15:04:05",
}

_GO_TOKEN = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|Z07:00|Z0700|Z07|-07:00|-0700|-07|"
    r"[.,](?:0+|9+)(?!\d)|_2|002|01|02|03|04|05|06|15|PM|pm|1|2|3|4|5"
)


def _offset(moment: datetime, colon: bool, zulu: bool, minutes: bool = True) -> str:
    delta = moment.utcoffset()
    seconds = int(delta.total_seconds()) if delta is not None else 0
    if zulu and seconds == 0:
        return "Z"
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds) // 60, 60)
    if not minutes:
        return f"{sign}{hours:02d}"
    return f"{sign}{hours:02d}{':' if colon else ''}{rest:02d}"


def _fraction(moment: datetime, token: str) -> str:
    digits = len(token) - 1
    micro = f"{moment.microsecond:06d}{'0' * 3}"[:digits]
    if token[1] == "9":
        micro = micro.rstrip("0")
        return f"{token[0]}{micro}" if micro else ""
    return f"{token[0]}{micro}"


def _go_token(moment: datetime, token: str) -> str:
    hour12 = moment.hour % 12 or 12
    simple = {
        "January": moment.strftime("%B"),
        "Jan": moment.strftime("%b"),
        "Monday": moment.strftime("%A"),
        "Mon": moment.strftime("%a"),
        "MST": moment.tzname() or "UTC",
        "2006": f"{moment.year:04d}",
        "06": f"{moment.year % 100:02d}",
        "01": f"{moment.month:02d}",
        "1": str(moment.month),
        "02": f"{moment.day:02d}",
        "_2": f"{moment.day:>2d}",
        "2": str(moment.day),
        "002": f"{moment.timetuple().tm_yday:03d}",
        "15": f"{moment.hour:02d}",
        "03": f"{hour12:02d}",
        "3": str(hour12),
        "04": f"{moment.minute:02d}",
        "4": str(moment.minute),
        "05": f"{moment.second:02d}",
        "5": str(moment.second),
        "PM": "PM" if moment.hour >= 12 else "AM",
        "pm": "pm" if moment.hour >= 12 else "am",
        "Z07:00": _offset(moment, colon=True, zulu=True),
        "Z0700": _offset(moment, colon=False, zulu=True),
        "Z07": _offset(moment, colon=False, zulu=True, minutes=False),
        "-07:00": _offset(moment, colon=True, zulu=False),
        "-0700": _offset(moment, colon=False, zulu=False),
        "-07": _offset(moment, colon=False, zulu=False, minutes=False),
    }
    if token in simple:
        return simple[token]
    return _fraction(moment, token)


def format_time(moment: datetime, layout: str) -> str:
    """``moment`` formatted by a Go layout name, a Go layout, or a strftime format."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    layout = layout.strip()
    if not layout:
        layout = GO_NAMED_LAYOUTS["RFC3339"]
    layout = GO_NAMED_LAYOUTS.get(layout, layout)
    if "%" in layout:
        return moment.strftime(layout)
    return _GO_TOKEN.sub(lambda match: _go_token(moment, match.group(0)), layout)
