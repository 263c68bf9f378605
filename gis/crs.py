"""Coordinate reference systems: parse what clients send, map it to a PostGIS SRID, transform.

China first: CGCS2000 (EPSG:4490) and its Gauss-Krüger zones (EPSG:4513–4554) are ordinary EPSG
codes here, and a city's local grid (PROJ or WKT text) is registered in ``spatial_ref_sys`` under a
custom SRID at database creation. GeoJSON output defaults to CRS84 (lon/lat, RFC 7946).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import pyproj
from pyproj.exceptions import CRSError
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.errors import UnknownCRS

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
_EPSG_URI_RE = re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/[^/]+/(\d+)$", re.I)
_EPSG_URN_RE = re.compile(r"^urn:ogc:def:crs:EPSG:[^:]*:(\d+)$", re.I)
_CRS84_FORMS = {
    CRS84_URI.lower(),
    "https://www.opengis.net/def/crs/ogc/1.3/crs84",
    "urn:ogc:def:crs:ogc:1.3:crs84",
    "crs84",
    "ogc:crs84",
}


T = TypeVar("T")
_MISSING: Any = object()


def built_once(maxsize: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Memoise a costly builder so that each value is built once, even when many threads ask for it at
    the same moment (functools.lru_cache lets every thread that misses build its own copy: 15 request
    threads each making the same pyproj Transformer took 5 s instead of 0.3 s). At most ``maxsize``
    values are kept (clients choose CRS strings), the oldest dropped first; errors are not kept."""

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        done: dict[tuple, T] = {}
        locks: dict[tuple, threading.Lock] = {}
        guard = threading.Lock()

        @wraps(function)
        def cached(*args: Any) -> T:
            try:
                return done[args]
            except KeyError:
                pass
            with guard:
                lock = locks.setdefault(args, threading.Lock())
            with lock:  # the first caller builds; the others wait for it instead of building their own
                value = done.get(args, _MISSING)
                if value is _MISSING:
                    value = function(*args)
                    with guard:
                        while len(done) >= maxsize:
                            oldest = next(iter(done))
                            del done[oldest]
                            locks.pop(oldest, None)
                        done[args] = value
                return value

        cached.cache_clear = done.clear  # type: ignore[attr-defined]
        return cached

    return decorate


def is_crs84(value: str) -> bool:
    return value.strip().lower() in _CRS84_FORMS


@built_once(maxsize=256)
def parse_crs(value: str) -> pyproj.CRS:
    """A pyproj CRS from an EPSG code, OGC URI/URN, CRS84, PROJ string or WKT.

    Raises UnknownCRS with a hint when pyproj cannot make sense of it.
    """
    text_value = value.strip()
    if not text_value:
        raise UnknownCRS("empty CRS: give an EPSG code such as EPSG:4490 or an OGC CRS URI")
    if is_crs84(text_value):
        return pyproj.CRS.from_user_input("OGC:CRS84")
    for pattern in (_EPSG_URI_RE, _EPSG_URN_RE):
        match = pattern.match(text_value)
        if match:
            text_value = f"EPSG:{match.group(1)}"
    if text_value.isdigit():
        text_value = f"EPSG:{text_value}"
    try:
        return pyproj.CRS.from_user_input(text_value)
    except CRSError:
        raise UnknownCRS(
            f"unknown CRS {value!r}: use an EPSG code (EPSG:4490 CGCS2000, EPSG:4548 CGCS2000 GK CM 117°E, "
            f"EPSG:4326 WGS84), an OGC URI ({CRS84_URI}), or PROJ/WKT text"
        ) from None


def crs_uri(srid: int) -> str:
    """The OGC URI for an SRID, as used in collection metadata and Content-Crs."""
    return EPSG_URI.format(code=srid)


def srid_of(value: str, storage_crs: str, storage_srid: int) -> int:
    """The PostGIS SRID that stands for a client-given CRS.

    CRS84 maps to 4326: PostGIS always keeps lon/lat order, so the two differ only in the axis order a
    client expects, which the API handles when it writes coordinates out. The storage CRS (which may be
    a local grid known to PostGIS only by its custom SRID) maps to the storage SRID.
    """
    if is_crs84(value):
        return 4326
    crs = parse_crs(value)
    if value.strip() == storage_crs.strip() or crs == parse_crs(storage_crs):
        return storage_srid
    epsg = crs.to_epsg(min_confidence=90)
    if epsg is None:
        raise UnknownCRS(
            f"CRS {value!r} has no EPSG code and is not this city's storage CRS; "
            "send coordinates in an EPSG CRS or in the storage CRS"
        )
    return epsg


@built_once(maxsize=256)
def lonlat_first(srid: int) -> bool:
    """False when the CRS's authority axis order is north first (EPSG:4326, 4490, CGCS2000 GK zones).

    OGC API Features Part 2 says coordinates in a `crs` other than CRS84 follow the authority's axis
    order, so a CGCS2000 GK zone is written northing first, as Chinese surveyors expect.
    """
    try:
        axes = pyproj.CRS.from_epsg(srid).axis_info
    except CRSError:
        return True
    return not (axes and axes[0].direction.lower() in ("north", "south"))


class Transform:
    """An always-x/y (lon/lat, easting/northing) transform between two CRSs, cheap on any thread.

    pyproj remakes a Transformer for each thread that uses it, and remaking one from two CRSs searches
    PROJ's database for the operation again: 100 ms on a new request thread (the server's threads come
    and go), a second of stall when eight start at once. When PROJ settled on a single operation, points
    go through a transformer rebuilt from that operation's pipeline text, which a thread remakes in a
    fraction of a millisecond and which gives the same coordinates. A transform that still chooses
    between operations point by point (grids, areas of use) stays as PROJ made it.
    """

    def __init__(self, source: pyproj.CRS, target: pyproj.CRS) -> None:
        found = pyproj.Transformer.from_crs(source, target, always_xy=True)
        single = found.definition.startswith("proj=")
        self._points = pyproj.Transformer.from_pipeline(found.definition) if single else found

    def transform(self, x: Any, y: Any) -> tuple[Any, Any]:
        """x/y (numbers or arrays) in the source CRS → the same in the target CRS."""
        return self._points.transform(x, y)

    def transform_bounds(self, x0: float, y0: float, x1: float, y1: float,
                         densify_pts: int = 21) -> tuple[float, float, float, float]:
        """The box in the target CRS that holds a source box: its edges, each cut into ``densify_pts``
        pieces, transformed, and their extremes taken, so a curved edge keeps its bulge. For
        city-sized boxes (no antimeridian, no pole)."""
        steps = [i / densify_pts for i in range(densify_pts + 1)]
        xs = [x0 + (x1 - x0) * f for f in steps] * 2 + [x0] * len(steps) + [x1] * len(steps)
        ys = [y0] * len(steps) + [y1] * len(steps) + [y0 + (y1 - y0) * f for f in steps] * 2
        tx, ty = self.transform(xs, ys)
        return min(tx), min(ty), max(tx), max(ty)


@built_once(maxsize=64)
def transformer(source: str, target: str) -> Transform:
    """A cached always-x/y transform between two CRS strings (see Transform), built once per pair for
    the whole process (the API builds the usual pairs at start-up: prepare_transforms)."""
    return Transform(parse_crs(source), parse_crs(target))


def prepare_transforms(storage_crs: str) -> list[tuple[str, str]]:
    """Build the transforms requests use between clients' usual CRSs (CRS84, WGS84, CGCS2000, Web
    Mercator) and the storage CRS, both ways, and use each once on this thread. Returns the pairs."""
    pairs = []
    for client in ("OGC:CRS84", "EPSG:4326", "EPSG:4490", "EPSG:3857"):
        for pair in ((client, storage_crs), (storage_crs, client)):
            transformer(*pair).transform(0.0, 0.0)
            pairs.append(pair)
    for srid in (4326, 4490, 3857):
        lonlat_first(srid)
    return pairs


def register_custom_crs(conn: Connection, srid: int, crs_text: str) -> None:
    """Put a local grid into spatial_ref_sys so PostGIS can store and reproject it.

    Idempotent; called when the database is created. EPSG SRIDs are already in PostGIS.
    """
    crs = parse_crs(crs_text)
    conn.execute(
        text(
            "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
            "VALUES (:srid, 'GOVGIS', :srid, :wkt, :proj) "
            "ON CONFLICT (srid) DO UPDATE SET srtext = EXCLUDED.srtext, proj4text = EXCLUDED.proj4text"
        ),
        {"srid": srid, "wkt": crs.to_wkt("WKT1_GDAL"), "proj": crs.to_proj4()},
    )
