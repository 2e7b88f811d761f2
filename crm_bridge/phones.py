"""Caller numbers to E.164, tolerant of whatever a PBX or a spreadsheet hands us.

``normalise("138 0013 8000", "CN") == "+8613800138000"``; anything that is not a valid
number (``<unknown>``, ``anonymous``, empty, garbage) gives ``None`` -- an *unknown caller*,
never an exception. Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from phonenumbers import timezone as pn_timezone

__all__ = [
    "DEFAULT_REGION",
    "UNKNOWN_MARKERS",
    "mask",
    "normalise",
    "region_of",
    "zone_for_number",
    "zones_for_number",
]

DEFAULT_REGION = "CN"

UNKNOWN_MARKERS = frozenset(
    {
        "",
        "<unknown>",
        "unknown",
        "anonymous",
        "restricted",
        "private",
        "unavailable",
        "withheld",
        "s",
    }
)
"""Caller-ID values Asterisk and carriers use for "no number"."""

_JUNK = re.compile(r"[\s\-().\u00a0\u3000/]")
_MAX_LEN = 40


def normalise(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """Return the E.164 form of ``raw`` or ``None`` when it is not a valid phone number.

    Accepts national (``13800138000``, ``020 7946 0958`` with region GB), international
    (``+86 138-0013-8000``), ``00``-prefixed international (``008613800138000``) and
    country code without ``+`` (``8613800138000``) forms, with spaces, dashes, dots and
    parentheses. ``region`` is the phonenumbers region code used for national numbers.
    """
    if raw is None:
        return None
    return _normalise(str(raw), region)


@functools.lru_cache(maxsize=8192)
def _normalise(raw: str, region: str) -> str | None:
    """Cached: a screen pop normalises the same caller number several times (pure)."""
    text = raw.strip()
    if text.lower() in UNKNOWN_MARKERS or len(text) > _MAX_LEN:
        return None
    text = _JUNK.sub("", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text or not (text[1:] if text.startswith("+") else text).isdigit():
        return None
    candidates = [text]
    if not text.startswith("+"):
        candidates.append("+" + text)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region or None)
        except NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return None


def region_of(e164: str) -> str | None:
    """The region code (``CN``, ``HK``...) of an E.164 number, or None."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except NumberParseException:
        return None


def mask(e164: str | None) -> str:
    """A masked display form for agents: ``+86 138****8000`` (country code, 3 first, 4 last)."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return "****"
    national = str(number.national_number)
    if len(national) <= 7:
        shown = national[:2] + "*" * max(len(national) - 4, 1) + national[-2:]
    else:
        shown = national[:3] + "*" * (len(national) - 7) + national[-4:]
    return f"+{number.country_code} {shown}"


# ---------------------------------------------------------------- time zones of a number
@functools.lru_cache(maxsize=1024)
def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_SAMPLES = tuple(
    dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC) + dt.timedelta(days=7 * i) for i in range(53)
)


@functools.lru_cache(maxsize=1024)
def _offsets(name: str) -> tuple[dt.timedelta | None, ...]:
    z = ZoneInfo(name)
    return tuple(t.astimezone(z).utcoffset() for t in _SAMPLES)


@functools.lru_cache(maxsize=65536)
def zones_for_number(e164: str) -> tuple[str, ...]:
    """IANA zones ``phonenumbers`` gives for a number (``()`` when it cannot tell).

    Zones that keep the same offsets all year (a UK mobile: London, Jersey, Guernsey, Isle
    of Man) are one zone for these rules: one name is kept (the last in sort order)."""
    try:
        num = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    names = [
        n
        for n in pn_timezone.time_zones_for_number(num)
        if n != "Etc/Unknown" and _valid_zone(n) is not None
    ]
    kept: dict[tuple[dt.timedelta | None, ...], str] = {}
    for n in sorted(names):
        kept[_offsets(n)] = n
    return tuple(sorted(kept.values()))


def zone_for_number(e164: str) -> str:
    """The number's zone when it has exactly one, else ``''`` (unknown or several)."""
    zones = zones_for_number(e164)
    return zones[0] if len(zones) == 1 else ""
