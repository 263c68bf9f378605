"""Dates and times as a person in the city reads them: local time to the minute, legal dates as dates.

The API carries ISO 8601 with the offset; maps, notices, orders and reports show the city's local
time (``GOVGIS_TIME_ZONE``, Asia/Shanghai for Xiamen). A naive datetime is refused rather than
guessed: whether it meant UTC or local time is exactly the eight-hour mistake this module exists to
prevent. A legal date (a registration effective 2024-03-01) is a calendar date: a ``date`` is shown
as it is, and a legal instant stored as a timestamp is shown as its local calendar day, never as the
UTC day before.

The web map formats the same way in the browser (Intl.DateTimeFormat with the same zone).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

Zone = str | ZoneInfo


def _zone(zone: Zone) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)


def _parse(value: dt.datetime | dt.date | str) -> dt.datetime | dt.date:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if len(text) == 10:  # YYYY-MM-DD: a calendar date
        return dt.date.fromisoformat(text)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def to_local(value: dt.datetime | str, zone: Zone) -> dt.datetime:
    """An aware datetime (or ISO 8601 text with an offset) in the city's zone.

    Raises ValueError for a naive datetime: the caller must say which clock it was read on.
    """
    parsed = _parse(value)
    if not isinstance(parsed, dt.datetime):
        raise ValueError(f"{value!r} is a date, not a time of day: use format_date")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset: give an aware datetime (e.g. …+08:00 or …Z)")
    return parsed.astimezone(_zone(zone))


def format_datetime(value: dt.datetime | str, zone: Zone, lang: str = "zh") -> str:
    """Local date and time to the minute: ``2024年3月1日 10:22`` (zh) or ``2024-03-01 10:22`` (en)."""
    local = to_local(value, zone)
    return f"{_day_text(local.date(), lang)} {local:%H:%M}"


def format_date(value: dt.date | dt.datetime | str, lang: str = "zh", zone: Zone | None = None) -> str:
    """A legal (calendar) date: ``2024年3月1日`` (zh) or ``2024-03-01`` (en).

    A ``date`` is shown as it is. A datetime (a legal instant kept as a timestamp) is shown as its
    calendar day in ``zone``, which is then required.
    """
    parsed = _parse(value)
    if isinstance(parsed, dt.datetime):
        if zone is None:
            raise ValueError("a datetime's calendar day depends on the zone: pass zone= (the city's time zone)")
        parsed = to_local(parsed, zone).date()
    return _day_text(parsed, lang)


def _day_text(day: dt.date, lang: str) -> str:
    if lang == "en":
        return day.isoformat()
    return f"{day.year}年{day.month}月{day.day}日"


def utc_offset_label(zone: Zone, at: dt.datetime | None = None) -> str:
    """The zone's offset as a person reads it, e.g. ``UTC+08:00`` (for a footnote on a document)."""
    moment = (at or dt.datetime.now(dt.UTC)).astimezone(_zone(zone))
    offset = moment.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
