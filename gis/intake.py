"""The one intake for what clients send: geometries with their CRS, bounding boxes, date-times, and
the size and nesting limits every route applies before any of it reaches the database.

One axis-order rule everywhere (OGC API Features Part 2 / the CRS authority): coordinates are in the
axis order the CRS's authority defines — CRS84 (the default, and plain GeoJSON) is lon/lat, EPSG:4326
and EPSG:4490 are lat/lon, the CGCS2000 Gauss-Krüger zones (EPSG:4513–4554) are northing (X) first as
Chinese surveyors write them. A local grid given as PROJ text has east/north axes, as PROJ defines.
Whatever route takes the coordinates — OGC writes, /query, /land, /planning, /pipeline, /emergency —
reads them the same way.

Everything here raises GisError subclasses (400/413) with a message a person can act on; nothing
here touches the database.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyproj
import shapely
from shapely import wkt as shapely_wkt
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shapely_transform

from gis.crs import is_crs84, parse_crs
from gis.errors import InvalidGeometry, InvalidParameter, PayloadTooLarge
from gis.geometry import parse_geojson, to_storage

# Far beyond any real coordinate (metres or degrees) yet far from float overflow in PROJ and GEOS.
MAX_ABS_COORDINATE = 1e9
MAX_GEOMETRY_NESTING = 8  # GeometryCollection in GeometryCollection … deeper is never real data
MAX_TEXT_CHARS = 10_000


@dataclass(frozen=True)
class Limits:
    """How much one request may send; built from ServiceSettings by the API."""

    max_vertices: int = 100_000


@dataclass(frozen=True)
class Frame:
    """Where stored geometries live: the storage CRS, and the city's lon/lat box."""

    storage_crs: str
    city_bounds: tuple[float, float, float, float]


# ---------------------------------------------------------------- plain values


def check_text(value: str, what: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A client text value that PostgreSQL can hold: no NUL character, not absurdly long."""
    if "\x00" in value:
        raise InvalidParameter(f"{what} contains a NUL character (\\0): remove it")
    if len(value) > max_chars:
        raise InvalidParameter(f"{what} is longer than {max_chars} characters")
    return value


def check_json_nesting(text: str, max_depth: int, what: str) -> None:
    """Refuse JSON (or bracketed CQL2 text) nested deeper than ``max_depth`` before parsing it:
    parsers recurse, and a few thousand brackets would exhaust the stack."""
    depth = 0
    in_string = False
    quote = ""
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                in_string = False
        elif char in "\"'":
            in_string, quote = True, char
        elif char in "[{(":
            depth += 1
            if depth > max_depth:
                raise InvalidParameter(f"{what} is nested more than {max_depth} levels deep: simplify it")
        elif char in "]})":
            depth -= 1


def _nesting(value: Any, limit: int) -> int:
    """Depth of nested lists/dicts (iterative: a hostile value must not exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (list, dict)))
    return deepest


# ---------------------------------------------------------------- CRS and axis order


@dataclass(frozen=True)
class ClientCrs:
    """A CRS a client declared, and whether its first axis is north (then x and y are swapped on the way in)."""

    text: str
    north_first: bool
    geographic: bool


@lru_cache(maxsize=256)
def client_crs(value: str | None) -> ClientCrs:
    """The declared CRS (default CRS84) under the one axis-order rule of this module."""
    if value is None or not value.strip() or is_crs84(value):
        return ClientCrs("OGC:CRS84", False, True)
    text = value.strip().strip("<>")
    crs: pyproj.CRS = parse_crs(text)
    axes = crs.axis_info
    north_first = bool(axes) and axes[0].direction.lower() in ("north", "south")
    return ClientCrs(text, north_first, crs.is_geographic)


def check_coordinates(geom: BaseGeometry, *, geographic: bool, north_first: bool = False, crs_name: str = "") -> None:
    """Refuse NaN, infinite and out-of-range coordinates before PROJ or GEOS sees them."""
    _check_magnitudes(geom, ClientCrs(crs_name or ("EPSG:4326" if geographic else "the CRS"), north_first,
                                      geographic))


def _check_magnitudes(geom: BaseGeometry, crs: ClientCrs) -> None:
    coords = shapely.get_coordinates(geom)
    if coords.size == 0:
        return
    if not np.isfinite(coords).all():
        raise InvalidGeometry("geometry has NaN or infinite coordinates")
    if crs.geographic:
        lon, lat = (coords[:, 1], coords[:, 0]) if crs.north_first else (coords[:, 0], coords[:, 1])
        if (np.abs(lon) > 180).any() or (np.abs(lat) > 90).any():
            order = "latitude, longitude" if crs.north_first else "longitude, latitude"
            raise InvalidGeometry(f"coordinates out of range for {crs.text}: it takes {order} in degrees")
    elif (np.abs(coords) > MAX_ABS_COORDINATE).any():
        raise InvalidGeometry(f"coordinates larger than {MAX_ABS_COORDINATE:g} are not in {crs.text}: check the CRS")


# ---------------------------------------------------------------- geometries


def parse_client_geometry(raw: Any, *, limits: Limits) -> BaseGeometry:
    """A shapely geometry from GeoJSON (object, Feature or text) or WKT text, within the limits."""
    if isinstance(raw, BaseGeometry):
        return raw
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        text = raw.strip()
        check_text(text, "geometry", max_chars=64 * limits.max_vertices + 1000)
        if not text.startswith("{"):
            return _parse_wkt(text, limits)
        check_json_nesting(text, MAX_GEOMETRY_NESTING * 2 + 6, "geometry")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidGeometry(f"geometry is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if isinstance(raw, dict) and _nesting(raw, MAX_GEOMETRY_NESTING * 2 + 6) > MAX_GEOMETRY_NESTING * 2 + 5:
        raise InvalidGeometry(f"geometry nests more than {MAX_GEOMETRY_NESTING} collections deep: flatten it")
    return parse_geojson(raw, max_vertices=limits.max_vertices)


def _parse_wkt(text: str, limits: Limits) -> BaseGeometry:
    if text.count(",") + 1 > limits.max_vertices:
        raise PayloadTooLarge(f"geometry has more than {limits.max_vertices} vertices: simplify it or split the request")
    check_json_nesting(text, MAX_GEOMETRY_NESTING * 2 + 6, "geometry")
    try:
        return shapely_wkt.loads(text)
    except shapely.errors.GEOSException as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise InvalidGeometry(f"geometry is neither GeoJSON nor WKT ({first})") from None


def client_geometry(raw: Any, crs: str | None, *, frame: Frame, limits: Limits,
                    expected: str | None = None) -> BaseGeometry:
    """A client geometry in its declared CRS (default CRS84), validated and in the storage CRS.

    Axis order per the module rule; coordinates checked for range before any transform; validity,
    type and the city's extent checked by gis.geometry.to_storage.
    """
    declared = client_crs(crs)
    geom = parse_client_geometry(raw, limits=limits)
    _check_magnitudes(geom, declared)
    if declared.north_first:
        geom = shapely_transform(lambda x, y, z=None: (y, x) if z is None else (y, x, z), geom)
    return to_storage(geom, declared.text, storage_crs=frame.storage_crs, city_bounds=frame.city_bounds,
                      expected=expected)


def client_point(x: float, y: float, crs: str | None, *, frame: Frame) -> BaseGeometry:
    """A point given as two numbers in the declared CRS's axis order, in the storage CRS."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (x, y)):
        raise InvalidParameter("the point's coordinates must be finite numbers")
    return client_geometry(shapely.Point(x, y), crs, frame=frame, limits=Limits())


# ---------------------------------------------------------------- bbox and datetime


def parse_bbox(value: str, *, geographic: bool = True) -> tuple[float, float, float, float]:
    """Four (or six, with heights) comma-separated numbers; InvalidParameter otherwise.

    ``geographic``: the box's CRS is in degrees, so the numbers must be longitudes and latitudes."""
    check_text(value, "bbox", max_chars=400)
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise InvalidParameter(f"bbox {value[:80]!r} must be 4 numbers: minx,miny,maxx,maxy (lon/lat by default)")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise InvalidParameter(f"bbox {value[:80]!r} has a non-number: give minx,miny,maxx,maxy") from None
    if not all(math.isfinite(n) for n in numbers):
        raise InvalidParameter("bbox numbers must be finite")
    x0, y0, x1, y1 = (numbers[0], numbers[1], numbers[3], numbers[4]) if len(numbers) == 6 else numbers
    if x0 > x1 or y0 > y1:
        raise InvalidParameter(f"bbox {value[:80]!r}: the minimum corner must come first (minx,miny,maxx,maxy)")
    limit = 180.0 if geographic else MAX_ABS_COORDINATE
    if max(abs(x0), abs(y0), abs(x1), abs(y1)) > limit:
        raise InvalidParameter(
            "bbox is outside the range of its CRS: degrees are within ±180 (±90 for latitude)" if geographic
            else f"bbox numbers beyond ±{MAX_ABS_COORDINATE:g} are not coordinates of a projected CRS")
    return x0, y0, x1, y1


def city_time(value: dt.datetime | None, zone: str) -> dt.datetime | None:
    """A time a person enters in a module form: one without an offset is read in the city's time zone.

    (Not for OGC ``datetime`` parameters: RFC 3339 requires the offset there, and ``parse_instant``
    keeps the standard's reading.) Clients should send offsets; a clerk who types 2024-03-01 00:00 in
    Xiamen means Beijing time, not eight hours later."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(zone))


def parse_instant(text: str, what: str = "datetime") -> dt.datetime | None:
    """An RFC 3339 instant ('..' or empty: open); a time without zone is UTC, as RFC 3339 requires one."""
    if text in ("..", ""):
        return None
    check_text(text, what, max_chars=64)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"{what} {text!r} is not RFC 3339 (e.g. 2024-05-01T00:00:00+08:00, or an "
                               "interval 2024-01-01T00:00:00Z/..)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_datetime(value: str) -> tuple[dt.datetime | None, dt.datetime | None, bool]:
    """(start, end, is_instant) from an RFC 3339 instant or interval ('a/b', '../b', 'a/..')."""
    if "/" in value:
        start_text, _, end_text = value.partition("/")
        start, end = parse_instant(start_text), parse_instant(end_text)
        if start and end and start > end:
            raise InvalidParameter("datetime interval ends before it starts")
        return start, end, False
    instant = parse_instant(value)
    if instant is None:
        raise InvalidParameter("datetime must be an instant or an interval")
    return instant, instant, True
