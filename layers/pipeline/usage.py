"""Consumption and usage analysis (用量分析), pure: the figures the database sums (per period, per
calendar month, per hour of the day, per category) shaped into answers — series with their gaps,
seasonal and daily profiles with shares, the peak hours, the volume an outage keeps from customers,
and the list of outage notices as CSV.

Conventions (the service's SQL follows them): a reading's consumption is the volume since the previous
read of its kind, up to ``read_at``. Billing reads count in the period of their read time; hourly
interval reads (timestamped at the end of their hour) count in the hour before ``read_at``. Periods,
months, days and hours are the city's local time.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gis.errors import InvalidParameter

UNITS = {"water": "m³", "gas": "m³", "heat": "GJ", "power": "kWh"}
PERIODS = ("hour", "day", "month", "year")
MAX_SPAN_DAYS = 366 * 5
SEASON_OF_MONTH = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
                   6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}
SEASON_ZH = {"winter": "冬", "spring": "春", "summer": "夏", "autumn": "秋"}
PEAK_HOURS = 3


def unit_of(utility: str) -> str:
    """The unit a utility's meters count in."""
    return UNITS.get(utility, "unit")


def check_period(start: dt.datetime | None, end: dt.datetime | None) -> None:
    """A period to sum over: aware times, start before end, at most five years."""
    for value, name in ((start, "from"), (end, "to")):
        if value is not None and value.tzinfo is None:
            raise InvalidParameter(f"{name} needs a time zone, e.g. 2026-01-01T00:00:00+08:00")
    if start is not None and end is not None:
        if end <= start:
            raise InvalidParameter("to must be after from")
        if (end - start).days > MAX_SPAN_DAYS:
            raise InvalidParameter("the period is at most five years: ask for a shorter one")


def check_granularity(period: str, kind: str) -> None:
    """Hours exist only in interval (smart meter) readings."""
    if period not in PERIODS:
        raise InvalidParameter(f"period is one of {', '.join(PERIODS)}")
    if period == "hour" and kind != "interval":
        raise InvalidParameter("hourly consumption comes from interval readings: ask with kind=interval")


def series(rows: Iterable[Mapping[str, Any]], period: str) -> list[dict[str, Any]]:
    """Summed rows (``period_start`` local naive, ``consumption``, ``readings``) as a sorted series."""
    out = []
    for r in sorted(rows, key=lambda r: r["period_start"]):
        start = r["period_start"]
        label = {"hour": f"{start:%Y-%m-%d %H:00}", "day": f"{start:%Y-%m-%d}", "month": f"{start:%Y-%m}",
                 "year": f"{start:%Y}"}[period]
        out.append({"period": label, "consumption": round(float(r["consumption"]), 3),
                    "readings": int(r["readings"])})
    return out


def _share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def seasonal_profile(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Consumption by calendar month (rows: ``month`` 1–12, ``consumption``) → 12 months with shares,
    the four seasons and the peak month."""
    by_month = {m: 0.0 for m in range(1, 13)}
    for r in rows:
        by_month[int(r["month"])] += float(r["consumption"])
    total = sum(by_month.values())
    months = [{"month": m, "consumption": round(v, 3), "share": _share(v, total)} for m, v in by_month.items()]
    seasons: dict[str, float] = {}
    for m, v in by_month.items():
        seasons[SEASON_OF_MONTH[m]] = seasons.get(SEASON_OF_MONTH[m], 0.0) + v
    peak = max(by_month, key=lambda m: (by_month[m], -m)) if total else None
    return {"months": months,
            "seasons": [{"season": s, "name_zh": SEASON_ZH[s], "consumption": round(v, 3), "share": _share(v, total)}
                        for s, v in seasons.items()],
            "peak_month": peak}


def daily_profile(rows: Iterable[Mapping[str, Any]], days: int) -> dict[str, Any]:
    """Consumption by hour of the day (rows: ``hour`` 0–23, ``consumption``) over ``days`` days of
    interval readings → 24 hours with the mean per day and the share, and the peak hours."""
    by_hour = {h: 0.0 for h in range(24)}
    for r in rows:
        by_hour[int(r["hour"])] += float(r["consumption"])
    total = sum(by_hour.values())
    hours = [{"hour": h, "consumption": round(v, 3), "mean_per_day": round(v / days, 3) if days else 0.0,
              "share": _share(v, total)} for h, v in by_hour.items()]
    peaks = sorted(by_hour, key=lambda h: (-by_hour[h], h))[:PEAK_HOURS] if total else []
    return {"days": days, "hours": hours, "peak_hours": peaks,
            "peak_hours_text": [f"{h:02d}:00–{h + 1:02d}:00" for h in peaks]}


def by_category(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows per category (``category``, ``customers``, ``with_readings``, ``consumption``) with shares,
    largest first."""
    items = [dict(r) for r in rows]
    total = sum(float(r["consumption"] or 0) for r in items)
    out = [{"category": r["category"], "customers": int(r["customers"]), "with_readings": int(r["with_readings"]),
            "consumption": round(float(r["consumption"] or 0), 3), "share": _share(float(r["consumption"] or 0), total)}
           for r in items]
    return sorted(out, key=lambda r: (-r["consumption"], r["category"]))


def affected_summary(row: Mapping[str, Any], customers: int, unit: str) -> dict[str, Any]:
    """What the customers an isolation cuts off consume (``row``: the year's ``consumption``,
    ``with_readings``, the window ``start``/``end``), with the mean daily and hourly rates."""
    total = float(row["consumption"] or 0)
    start, end = row.get("start"), row.get("end")
    days = (end - start).total_seconds() / 86400 if start and end else 0.0
    per_day = total / days if days else 0.0
    return {"customers": customers, "customers_with_readings": int(row["with_readings"] or 0), "unit": unit,
            "window": {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None},
            "consumption": round(total, 3), "per_day": round(per_day, 3), "per_hour": round(per_day / 24, 3),
            "basis": "上一年抄表用量 billing reads of the year up to the latest read of these customers"}


def outage_volume(affected: Mapping[str, Any] | None, incident_at: dt.datetime,
                  restore_at: dt.datetime) -> dict[str, Any] | None:
    """The volume the customers would have drawn between the incident and the planned restoration, at
    their mean hourly rate (``affected`` from ``affected_summary``; None for an isolation without it)."""
    if not affected:
        return None
    hours = max((restore_at - incident_at).total_seconds() / 3600, 0.0)
    return {**affected, "outage_hours": round(hours, 2), "volume_during_outage": round(affected["per_hour"] * hours, 3)}


NOTICE_COLUMNS = ("account_no", "name", "category", "address", "contact_name", "contact_phone", "channels",
                  "critical", "notice_text")


def channels(row: Mapping[str, Any]) -> list[str]:
    """How a notice reaches a customer: a text message where there is a phone, a notice posted at the
    address, a call for critical customers (hospitals, schools, fire)."""
    out = []
    if row.get("contact_phone"):
        out.append("sms")
    if row.get("critical") and row.get("contact_phone"):
        out.append("call")
    if row.get("address"):
        out.append("posting")
    return out


def notices_csv(notices: Sequence[Mapping[str, Any]]) -> str:
    """The notices as CSV with a BOM (Excel opens it as UTF-8), one customer a line."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(NOTICE_COLUMNS)
    for n in notices:
        writer.writerow([" ".join(n[c]) if c == "channels" else ("" if n.get(c) is None else n[c])
                         for c in NOTICE_COLUMNS])
    return buffer.getvalue()
