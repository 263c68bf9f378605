"""土地利用详查 and 变更调查: the rules a survey year's patches must follow, and their legal area.

Each survey year's patches stay in the table; the current-status database is the latest year and
every earlier year stays queryable. A patch's legal area is its ellipsoidal area (third national land
survey); when a submission does not carry it, it is computed on the CGCS2000 ellipsoid.

Pure: the service (layers/landuse/service.py) loads the rows this module checks and computes the
change patches in the database.
"""

from __future__ import annotations

from typing import Any

import pyproj
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shapely_transform

from gis.crs import transformer
from gis.errors import InvalidParameter
from gis.geometry import geometry_problem, promote
from layers.landuse import classes
from layers.landuse.models import SYSTEMS

# CGCS2000 uses the GRS80 ellipsoid
_GEOD = pyproj.Geod(ellps="GRS80")
# slivers below this are digitising noise where two years' boundaries almost coincide
MIN_CHANGE_AREA_M2 = 1.0


def ellipsoidal_area(geometry: BaseGeometry, storage_crs: str) -> float:
    """Area (m²) on the CGCS2000 ellipsoid of a polygon in ``storage_crs``."""
    lonlat = shapely_transform(transformer(storage_crs, "EPSG:4490").transform, geometry)
    area, _ = _GEOD.geometry_area_perimeter(lonlat)
    return abs(area)


def check_class_system(class_system: str) -> None:
    """A survey is loaded in one of the known classification systems."""
    if class_system not in SYSTEMS:
        raise InvalidParameter(f"class_system must be one of {', '.join(SYSTEMS)}")


def survey_rows(patches: list[dict[str, Any]], *, year: int, class_system: str,
                storage_crs: str) -> list[dict[str, Any]]:
    """The table rows of a survey year's patches, every patch checked; InvalidParameter listing every
    refused patch when any is bad (a survey year is loaded whole or not at all).

    ``patches``: dicts with patch_no, class_code, district, geometry (shapely, storage CRS), optional
    class_name, settlement_code, ownership, ellipsoidal_area.
    """
    if not patches:
        raise InvalidParameter("no patches given")
    rows, problems = [], []
    known = classes.survey_classes()
    for i, patch in enumerate(patches):
        geom = patch.get("geometry")
        problem = geometry_problem(geom, "MultiPolygon")
        code = str(patch.get("class_code") or "")
        if problem:
            problems.append(f"patch {i + 1}: {problem}")
            continue
        if code not in known and code[:2] not in {c[:2] for c in known}:
            problems.append(f"patch {i + 1}: class code {code!r} is not in the {class_system} list")
            continue
        if not patch.get("patch_no") or not patch.get("district"):
            problems.append(f"patch {i + 1}: patch_no and district are required")
            continue
        area = patch.get("ellipsoidal_area") or ellipsoidal_area(geom, storage_crs)
        rows.append({**patch, "survey_year": year, "class_system": class_system, "class_code": code,
                     "class_name": patch.get("class_name") or known.get(code, classes.classify(code)).name,
                     "ellipsoidal_area": float(area), "geometry": promote(geom, "MultiPolygon")})
    if problems:
        raise InvalidParameter(f"{len(problems)} patch(es) refused, nothing loaded: " + "; ".join(problems[:20]),
                               errors=problems)
    return rows
