"""Client parameters the module routers share: a posted geometry in the storage CRS, a lon/lat bbox
as an area, a time without zone. Written once here so /land, /planning and /pipeline read them alike
(routers never import one another).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from gis.crs import transformer
from gis.errors import InvalidParameter
from gis.geometry import parse_geojson, to_storage
from gis.settings import Settings

# Parcel boundaries, red lines and survey patches are survey-grade polygons with many vertices: the
# land and planning routes accept up to this many per geometry (the pipeline routes use the
# service's max_query_vertices setting).
AREA_MAX_VERTICES = 200_000


def storage_geometry(geojson: dict[str, Any], crs: str, settings: Settings, expected: str = "MultiPolygon",
                     *, max_vertices: int | None = None) -> BaseGeometry:
    """A client GeoJSON geometry in ``crs``, validated (type, vertices, city bounds) and in the storage CRS.

    ``max_vertices`` defaults to the service's ``max_query_vertices`` setting.
    """
    limit = settings.service.max_query_vertices if max_vertices is None else max_vertices
    return to_storage(parse_geojson(geojson, max_vertices=limit), crs, storage_crs=settings.spatial.storage_crs,
                      city_bounds=settings.spatial.city_bounds, expected=expected)


def bbox_area(bbox: str | None, settings: Settings) -> BaseGeometry | None:
    """A lon/lat ``minlon,minlat,maxlon,maxlat`` box as a storage-CRS polygon (None when not given)."""
    if bbox is None:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in bbox.split(","))
    except ValueError:
        raise InvalidParameter("bbox is minlon,minlat,maxlon,maxlat (four numbers)") from None
    if x1 <= x0 or y1 <= y0:
        raise InvalidParameter("bbox: the minimum must be below the maximum")
    t = transformer("OGC:CRS84", settings.spatial.storage_crs)
    return box(*t.transform_bounds(x0, y0, x1, y1, densify_pts=21))


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A time without zone is read as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value
