"""Validation of every geometry that enters govgis.

One set of rules for single features (API writes, posted query areas) and whole files (imports):
parse, check numbers, check type and dimension, check validity, reproject to the storage CRS, check
the city bounds. Nothing is silently repaired: a bad geometry is refused with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shapely_transform
from shapely.validation import explain_validity

from gis.crs import transformer
from gis.errors import InvalidGeometry, PayloadTooLarge

# The families a declared layer geometry type accepts; single parts are promoted to multi on the way in.
COMPATIBLE_TYPES: dict[str, tuple[str, ...]] = {
    "Point": ("Point",),
    "LineString": ("LineString",),
    "Polygon": ("Polygon",),
    "MultiPoint": ("Point", "MultiPoint"),
    "MultiLineString": ("LineString", "MultiLineString"),
    "MultiPolygon": ("Polygon", "MultiPolygon"),
    "Geometry": ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"),
}

GEOJSON_TYPES = {
    "Point",
    "LineString",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
    "GeometryCollection",
}


@dataclass(frozen=True)
class CityExtent:
    """The city's lon/lat box and the same box in the storage CRS (densified edges)."""

    lonlat: tuple[float, float, float, float]
    storage: tuple[float, float, float, float]


@lru_cache(maxsize=8)
def city_extent(bounds: tuple[float, float, float, float], storage_crs: str) -> CityExtent:
    t = transformer("EPSG:4326", storage_crs)
    storage = t.transform_bounds(*bounds, densify_pts=21)
    return CityExtent(lonlat=bounds, storage=tuple(storage))


def parse_geojson(value: Any, *, max_vertices: int | None = None) -> BaseGeometry:
    """A shapely geometry from a GeoJSON geometry, Feature, or their JSON text.

    Raises InvalidGeometry saying exactly what is malformed.
    """
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidGeometry(f"geometry is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise InvalidGeometry("geometry must be a GeoJSON object with 'type' and 'coordinates'")
    if value.get("type") == "Feature":
        value = value.get("geometry")
        if not isinstance(value, dict):
            raise InvalidGeometry("the Feature has no geometry: give a GeoJSON geometry object")
    geom_type = value.get("type")
    if geom_type not in GEOJSON_TYPES:
        raise InvalidGeometry(
            f"unknown GeoJSON geometry type {geom_type!r}: use one of {', '.join(sorted(GEOJSON_TYPES))}"
        )
    if geom_type != "GeometryCollection" and "coordinates" not in value:
        raise InvalidGeometry(f"the {geom_type} has no 'coordinates' member")
    if max_vertices is not None:
        count = _count_positions(value.get("coordinates", value.get("geometries")))
        if count > max_vertices:
            raise PayloadTooLarge(
                f"geometry has {count} vertices, more than the limit of {max_vertices}: simplify it or "
                "split the request"
            )
    ring_problem = _geojson_ring_problem(value)
    if ring_problem:
        raise InvalidGeometry(ring_problem)
    try:
        geom = shape(value)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException) as exc:
        raise InvalidGeometry(f"malformed {geom_type} coordinates: {exc}") from None
    return geom


def _geojson_ring_problem(value: dict[str, Any]) -> str | None:
    """Unclosed or short rings, caught before shapely, which would silently close them."""
    if value.get("type") == "Polygon":
        polygons = [value.get("coordinates") or []]
    elif value.get("type") == "MultiPolygon":
        polygons = value.get("coordinates") or []
    else:
        return None
    for polygon in polygons:
        for ring in polygon or []:
            if not isinstance(ring, list) or len(ring) < 4:
                return "polygon ring has fewer than 4 positions (a ring needs at least 3 corners, closed)"
            if list(ring[0]) != list(ring[-1]):
                return "polygon ring is not closed: the last position must repeat the first"
    return None


def _count_positions(coords: Any) -> int:
    if isinstance(coords, (list, tuple)):
        if coords and isinstance(coords[0], (int, float)):
            return 1
        return sum(_count_positions(c) for c in coords)
    if isinstance(coords, dict):
        return _count_positions(coords.get("coordinates", coords.get("geometries")))
    return 0


def geometry_problem(geom: BaseGeometry | None, expected: str | None = None) -> str | None:
    """The reason a geometry is unacceptable, or None. Checks everything except CRS and bounds."""
    if geom is None:
        return "geometry is missing"
    if geom.is_empty:
        return "geometry is empty"
    coords = shapely.get_coordinates(geom, include_z=True)
    if not np.isfinite(coords[:, :2]).all():
        return "geometry has NaN or infinite coordinates"
    if shapely.has_z(geom) and not np.isfinite(coords[:, 2]).all():
        return "geometry has NaN Z values: drop Z or give real heights"
    if expected and expected != "Geometry" and geom.geom_type not in COMPATIBLE_TYPES[expected]:
        return f"wrong geometry type {geom.geom_type}: this layer takes {expected}"
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        for ring in _rings(geom):
            if len(ring.coords) < 4:
                return "polygon ring has fewer than 4 positions (a ring needs at least 3 corners, closed)"
            if ring.coords[0] != ring.coords[-1]:
                return "polygon ring is not closed: the last position must repeat the first"
    if geom.geom_type in ("LineString", "MultiLineString") and geom.length == 0:
        return "line has zero length"
    if not geom.is_valid:
        return f"invalid geometry: {explain_validity(geom)}"
    return None


def _rings(geom: BaseGeometry) -> Iterable[Any]:
    polygons = geom.geoms if geom.geom_type == "MultiPolygon" else [geom]
    for polygon in polygons:
        yield polygon.exterior
        yield from polygon.interiors


def promote(geom: BaseGeometry, expected: str) -> BaseGeometry:
    """Single part → multi part when the layer stores multi geometries."""
    if expected.startswith("Multi") and not geom.geom_type.startswith("Multi"):
        return {
            "MultiPolygon": shapely.MultiPolygon,
            "MultiLineString": shapely.MultiLineString,
            "MultiPoint": shapely.MultiPoint,
        }[expected]([geom])
    return geom


def to_storage(
    geom: BaseGeometry,
    source_crs: str,
    *,
    storage_crs: str,
    city_bounds: tuple[float, float, float, float],
    expected: str | None = None,
) -> BaseGeometry:
    """Validate a geometry given in ``source_crs`` and return it in the storage CRS.

    Raises InvalidGeometry when the geometry is bad or lies outside the city.
    """
    problem = geometry_problem(geom, expected)
    if problem:
        raise InvalidGeometry(problem)
    if source_crs != storage_crs:
        t = transformer(source_crs, storage_crs)
        geom = shapely_transform(t.transform, geom)
        if not np.isfinite(shapely.get_coordinates(geom)).all():
            raise InvalidGeometry(
                f"coordinates cannot be transformed from {source_crs}: are they in that CRS "
                "(lon/lat order for CRS84 and GeoJSON)?"
            )
    outside = outside_city(geom, storage_crs, city_bounds)
    if outside:
        raise InvalidGeometry(outside)
    return promote(geom, expected) if expected else geom


def outside_city(
    geom: BaseGeometry, storage_crs: str, city_bounds: tuple[float, float, float, float]
) -> str | None:
    """A message when a storage-CRS geometry is not inside the city's extent."""
    extent = city_extent(city_bounds, storage_crs)
    minx, miny, maxx, maxy = geom.bounds
    sx0, sy0, sx1, sy1 = extent.storage
    if minx < sx0 or miny < sy0 or maxx > sx1 or maxy > sy1:
        lon0, lat0, lon1, lat1 = extent.lonlat
        return (
            f"geometry lies outside the city (bounds {minx:.1f},{miny:.1f},{maxx:.1f},{maxy:.1f} in "
            f"{storage_crs}; the city is lon {lon0}–{lon1}, lat {lat0}–{lat1}): check the CRS you declared "
            "and the axis order"
        )
    return None


def frame_problems(geoms: np.ndarray, expected: str) -> list[str | None]:
    """Per-row reasons (or None) for an array of shapely geometries — the import path's check.

    Vectorised for the common case (all valid), falling back to the per-geometry reason only for the
    rows that fail, so a million-row import pays for GEOS validity once.
    """
    reasons: list[str | None] = [None] * len(geoms)
    missing = shapely.is_missing(geoms)
    valid = np.zeros(len(geoms), dtype=bool)
    present = ~missing
    valid[present] = shapely.is_valid(geoms[present]) & ~shapely.is_empty(geoms[present])
    allowed = set(COMPATIBLE_TYPES[expected])
    type_names = np.array(
        ["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
         "GeometryCollection"]
    )
    type_ids = shapely.get_type_id(geoms)
    names = np.where(type_ids >= 0, type_names[np.clip(type_ids, 0, 7)], "None")
    type_ok = np.isin(names, list(allowed))
    finite = np.ones(len(geoms), dtype=bool)
    if present.any():
        coords, index = shapely.get_coordinates(geoms[present], return_index=True)
        bad_rows = np.unique(index[~np.isfinite(coords).all(axis=1)])
        finite[np.flatnonzero(present)[bad_rows]] = False
    for i in np.flatnonzero(~(valid & type_ok & finite)):
        reasons[i] = geometry_problem(None if missing[i] else geoms[i], expected) or "invalid geometry"
    return reasons


def bounds_problems(
    geoms: np.ndarray, storage_crs: str, city_bounds: tuple[float, float, float, float]
) -> np.ndarray:
    """Boolean mask of storage-CRS geometries outside the city extent."""
    extent = city_extent(city_bounds, storage_crs).storage
    b = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        return (b[:, 0] < extent[0]) | (b[:, 1] < extent[1]) | (b[:, 2] > extent[2]) | (b[:, 3] > extent[3])

