"""The billing-system interface (收费系统接口), pure: rows of customer accounts and meter readings, from
a CSV file or a JSON batch, checked one by one.

Each bad row is refused with its row number and a reason a clerk can act on; the good rows go on. A
file whose header the interface does not understand is refused whole (a misspelt column would
otherwise lose a value on every row). Row 1 is the first data row (line 2 of a CSV file).

Readings are keyed by account, kind and reading time: ``classify_readings`` tells new rows from
corrections and from rows already stored as they are, which makes a repeated import change nothing.
No database here: the service (layers/pipeline/service.py) looks accounts up and writes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from gis.errors import InvalidParameter
from layers.pipeline.models import CUSTOMER_CATEGORIES, READING_KINDS

CATEGORY_ZH = {"residential": "居民", "commercial": "商业", "industrial": "工业", "hospital": "医院",
               "school": "学校", "government": "政府机关", "fire": "消防", "other": "其他"}
_CATEGORY_OF = {**{c: c for c in CUSTOMER_CATEGORIES}, **{zh: c for c, zh in CATEGORY_ZH.items()}}
_KIND_OF = {"billing": "billing", "抄表": "billing", "interval": "interval", "智能表": "interval"}

ACCOUNT_COLUMNS = ("account_no", "name", "category", "address", "contact_name", "contact_phone", "households",
                   "lon", "lat")
READING_COLUMNS = ("account_no", "read_at", "consumption", "register_value", "kind")
# the column names billing systems in the city export (Chinese headers), and the interface's own
COLUMN_ALIASES = {"用户编号": "account_no", "户号": "account_no", "用户名称": "name", "户名": "name",
                  "用户类别": "category", "地址": "address", "联系人": "contact_name", "联系电话": "contact_phone",
                  "户数": "households", "经度": "lon", "纬度": "lat", "抄表时间": "read_at", "用量": "consumption",
                  "表底数": "register_value", "读数类型": "kind"}
MAX_ROWS = 100_000
MAX_TEXT = 200
MAX_VOLUME = Decimal("100000000")  # 10⁸ units in one reading: beyond any meter of the city
THOUSANDTH = Decimal("0.001")
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)


def read_csv(text: str, columns: Sequence[str], required: Sequence[str]) -> list[dict[str, str]]:
    """The rows of a CSV file (comma or tab separated, header first, Chinese or English column names)."""
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidParameter("the CSV file is empty: the first line names the columns "
                               f"({', '.join(columns)})") from None
    except csv.Error as exc:
        raise InvalidParameter(f"the CSV file cannot be read: {exc}") from None
    names = [COLUMN_ALIASES.get(h.strip(), h.strip()) for h in header]
    unknown = [h for h, n in zip(header, names, strict=True) if n not in columns]
    if unknown:
        raise InvalidParameter(f"unknown column(s) {', '.join(repr(u) for u in unknown[:10])}: the columns are "
                               f"{', '.join(columns)} (or their Chinese names); nothing was imported")
    missing = [c for c in required if c not in names]
    if missing:
        raise InvalidParameter(f"the CSV file lacks the column(s) {', '.join(missing)}; nothing was imported")
    rows = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            row = {n: v for n, v in zip(names, values, strict=False)}
            if len(values) > len(names):
                # refused as a row (check_accounts / check_readings), not silently cut
                row[_ROW_PROBLEM] = (f"the row has {len(values)} values but the header names {len(names)} columns: "
                                     "quote values that contain the separator")
            rows.append(row)
            if len(rows) > MAX_ROWS:
                raise InvalidParameter(f"more than {MAX_ROWS} rows: split the file; nothing was imported")
    except csv.Error as exc:
        raise InvalidParameter(f"the CSV file cannot be read after row {len(rows)}: {exc}") from None
    return rows


_ROW_PROBLEM = "__problem__"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any, what: str) -> str | None:
    if _blank(value):
        return None
    text = str(value).strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"{what} is longer than {MAX_TEXT} characters")
    if any(ord(ch) < 32 for ch in text):
        raise ValueError(f"{what} contains control characters")
    return text


def _number(value: Any, what: str) -> float:
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {str(value)[:30]!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} is not a finite number")
    return number


def volume(value: Any, what: str) -> Decimal:
    """A consumption or register value: a number ≥ 0, kept to a thousandth (the column's scale)."""
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{what} {str(value)[:30]!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{what} is not a finite number")
    if number < 0:
        raise ValueError(f"{what} {number} is negative: a meter reading's {what} is 0 or more "
                         "(a meter replaced or turned back needs a correction row with the true value)")
    if number >= MAX_VOLUME:
        raise ValueError(f"{what} {number} is beyond any meter ({MAX_VOLUME:,.0f}): check the unit")
    return number.quantize(THOUSANDTH, rounding=ROUND_HALF_UP)


def reading_time(value: Any, zone: str) -> dt.datetime:
    """A reading time: ISO 8601; one without an offset is the city's local time (as every module form)."""
    if isinstance(value, dt.datetime):
        when = value
    else:
        text = str(value).strip()
        if not text:
            raise ValueError("read_at is missing")
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-"))
        except ValueError:
            raise ValueError(f"read_at {text[:40]!r} is not a time: write e.g. 2026-03-31T09:30:00+08:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(zone))
    try:
        when.astimezone(dt.UTC)  # an offset that pushes it off the calendar (year 0) is no time
    except OverflowError:
        raise ValueError(f"read_at {str(value)[:40]!r} is outside the calendar") from None
    return when


def _refusal(row: int, record: Mapping[str, Any], reason: str) -> dict[str, Any]:
    out: dict[str, Any] = {"row": row, "reason": reason}
    account = record.get("account_no")
    if not _blank(account):
        out["account_no"] = str(account).strip()[:MAX_TEXT]
    if "read_at" in record and not _blank(record.get("read_at")):
        out["read_at"] = str(record["read_at"])[:40]
    return out


def _account_of(record: Any, columns: Sequence[str], example: str) -> str:
    """The account number of a batch or CSV row, after the checks every row shares: an object, no
    problem found while the CSV was read, only known fields, an account number (ValueError otherwise)."""
    if not isinstance(record, Mapping):
        raise ValueError(f"a row is an object with {example}")
    if _ROW_PROBLEM in record:
        raise ValueError(record[_ROW_PROBLEM])
    unknown = [k for k in record if k not in columns]
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(str, unknown[:5]))}: the fields are {', '.join(columns)}")
    account = _text(record.get("account_no"), "account_no")
    if account is None:
        raise ValueError("account_no (用户编号) is missing")
    return account


def check_accounts(rows: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Account rows → (good rows with typed values and their row number under ``row``, refusals).

    Only ``account_no`` is needed on every row; a new account also needs its name and position (the
    service, which knows which accounts exist, checks that)."""
    good: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(rows, start=1):
        try:
            account = _account_of(record, ACCOUNT_COLUMNS, "account_no, name, …")
            if account in seen:
                raise ValueError(f"account {account} appears again (first in row {seen[account]}): "
                                 "send one row per account")
            out: dict[str, Any] = {"row": number, "account_no": account}
            for name in ("name", "address", "contact_name", "contact_phone"):
                if name in record and not _blank(record[name]):
                    out[name] = _text(record[name], name)
            phone = out.get("contact_phone")
            if phone is not None and not all(ch.isdigit() or ch in "+- ()" for ch in phone):
                raise ValueError(f"contact_phone {phone[:3]}… has characters other than digits, +, -, spaces")
            if not _blank(record.get("category")):
                category = _CATEGORY_OF.get(str(record["category"]).strip())
                if category is None:
                    raise ValueError(f"category {str(record['category'])[:30]!r} is unknown: one of "
                                     f"{', '.join(CUSTOMER_CATEGORIES)} (or 居民, 商业, …)")
                out["category"] = category
            if not _blank(record.get("households")):
                households = _number(record["households"], "households")
                if households != int(households) or not 1 <= households <= 100_000:
                    raise ValueError("households (户数) is a whole number from 1 to 100000")
                out["households"] = int(households)
            has_lon, has_lat = not _blank(record.get("lon")), not _blank(record.get("lat"))
            if has_lon != has_lat:
                raise ValueError("give both lon and lat (经度, 纬度) or neither")
            if has_lon:
                out["lon"], out["lat"] = _number(record["lon"], "lon"), _number(record["lat"], "lat")
                if not (-180 <= out["lon"] <= 180 and -90 <= out["lat"] <= 90):
                    raise ValueError("lon/lat are degrees (lon −180…180, lat −90…90), in that order")
        except ValueError as exc:
            refused.append(_refusal(number, record if isinstance(record, Mapping) else {}, str(exc)))
            continue
        seen[account] = number
        good.append(out)
    return good, refused


def check_readings(rows: Iterable[Mapping[str, Any]], *, zone: str, now: dt.datetime
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Reading rows → (good rows: account_no, kind, read_at, consumption, register_value, row; refusals)."""
    good: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, dt.datetime], int] = {}
    latest = now + dt.timedelta(days=1)
    for number, record in enumerate(rows, start=1):
        try:
            account = _account_of(record, READING_COLUMNS, "account_no, read_at, consumption")
            kind = "billing" if _blank(record.get("kind")) else _KIND_OF.get(str(record["kind"]).strip())
            if kind is None:
                raise ValueError(f"kind {str(record['kind'])[:20]!r} is unknown: {' or '.join(READING_KINDS)}")
            when = reading_time(record.get("read_at"), zone)
            if when > latest:
                raise ValueError(f"read_at {when.isoformat()} is in the future: a reading is taken, not planned")
            if when < EARLIEST:
                raise ValueError(f"read_at {when.isoformat()} is before 1990: check the date")
            if _blank(record.get("consumption")):
                raise ValueError("consumption (用量) is missing")
            used = volume(record["consumption"], "consumption")
            register = None if _blank(record.get("register_value")) else volume(record["register_value"],
                                                                                  "register_value")
            key = (account, kind, when)
            if key in seen:
                raise ValueError(f"the reading of account {account} at {when.isoformat()} appears again (first in "
                                 f"row {seen[key]}): send one row per account and time")
        except ValueError as exc:
            refused.append(_refusal(number, record if isinstance(record, Mapping) else {}, str(exc)))
            continue
        seen[key] = number
        good.append({"row": number, "account_no": account, "kind": kind, "read_at": when, "consumption": used,
                     "register_value": register})
    return good, refused


def classify_readings(rows: Sequence[dict[str, Any]],
                      stored: Mapping[tuple[int, str, dt.datetime], tuple[Decimal, Decimal | None]]
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Good rows (with ``customer_id``) against what is stored under the same key → (new rows,
    corrections with their ``before`` values, how many are stored already exactly as sent)."""
    new, corrected, unchanged = [], [], 0
    for r in rows:
        key = (r["customer_id"], r["kind"], r["read_at"])
        if key not in stored:
            new.append(r)
            continue
        consumption, register = stored[key]
        if consumption == r["consumption"] and register == r["register_value"]:
            unchanged += 1
        else:
            corrected.append({**r, "before": {"consumption": consumption, "register_value": register}})
    return new, corrected, unchanged
