"""土地利用详查 and 变更调查: load a survey year, compute what changed since the previous one.

Each survey year's patches stay in the table; the current-status database is the latest year and
every earlier year stays queryable. A patch's legal area is its ellipsoidal area (third national land
survey); when a submission does not carry it, it is computed on the CGCS2000 ellipsoid.
"""

from __future__ import annotations

from typing import Any

import pyproj
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shapely_transform
from sqlalchemy.engine import Connection

from gis.access import Caller, require_write
from gis.crs import transformer
from gis.errors import Conflict, InvalidParameter
from gis.geometry import geometry_problem, promote
from gis.settings import get_settings
from gis.writes import audit
from layers.landuse import classes
from layers.landuse import repository as repo
from layers.landuse.layers import CHANGES, SURVEY
from layers.landuse.models import SYSTEMS

# CGCS2000 uses the GRS80 ellipsoid
_GEOD = pyproj.Geod(ellps="GRS80")
# slivers below this are digitising noise where two years' boundaries almost coincide
MIN_CHANGE_AREA_M2 = 1.0


def ellipsoidal_area(geometry: BaseGeometry, storage_crs: str | None = None) -> float:
    """Area (m²) on the CGCS2000 ellipsoid of a storage-CRS polygon."""
    storage_crs = storage_crs or get_settings().spatial.storage_crs
    lonlat = shapely_transform(transformer(storage_crs, "EPSG:4490").transform, geometry)
    area, _ = _GEOD.geometry_area_perimeter(lonlat)
    return abs(area)


def load_survey_year(conn: Connection, caller: Caller, *, year: int, patches: list[dict[str, Any]],
                     class_system: str = "三调工作分类", min_change_area_m2: float = MIN_CHANGE_AREA_M2
                     ) -> dict[str, Any]:
    """Load one survey year (变更调查) and compute change patches against the previous year.

    ``patches``: dicts with patch_no, class_code, district, geometry (shapely, storage CRS), optional
    class_name, settlement_code, ownership, ellipsoidal_area. Refused (nothing written) when the
    year is already loaded or a patch is bad.
    """
    require_write(caller, SURVEY)
    if class_system not in SYSTEMS:
        raise InvalidParameter(f"class_system must be one of {', '.join(SYSTEMS)}")
    if year in repo.survey_years(conn):
        raise Conflict(f"survey year {year} is already loaded; a survey year is loaded once")
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
        area = patch.get("ellipsoidal_area") or ellipsoidal_area(geom)
        rows.append({**patch, "survey_year": year, "class_system": class_system, "class_code": code,
                     "class_name": patch.get("class_name") or known.get(code, classes.classify(code)).name,
                     "ellipsoidal_area": float(area), "geometry": promote(geom, "MultiPolygon")})
    if problems:
        raise InvalidParameter(f"{len(problems)} patch(es) refused, nothing loaded: " + "; ".join(problems[:20]),
                               errors=problems)
    repo.insert_survey_patches(conn, rows)
    previous = [y for y in repo.survey_years(conn) if y < year]
    result: dict[str, Any] = {"year": year, "patches": len(rows), "previous_year": None, "change_patches": 0}
    if previous:
        result["previous_year"] = previous[-1]
        result["change_patches"] = repo.compute_change_patches(conn, previous[-1], year, min_change_area_m2)
        result["changes"] = repo.change_summary(conn, previous[-1], year)
    audit(conn, caller, SURVEY.id, None, "import", None, None,
          {"survey_year": year, "patches": len(rows), "previous_year": result["previous_year"]})
    if result["change_patches"]:
        audit(conn, caller, CHANGES.id, None, "import", None, None,
              {"from_year": result["previous_year"], "to_year": year, "patches": result["change_patches"]})
    return result


def change_survey(conn: Connection, caller: Caller, *, from_year: int, to_year: int,
                  min_change_area_m2: float = MIN_CHANGE_AREA_M2) -> dict[str, Any]:
    """Recompute the change patches between two loaded survey years (from class → to class, area)."""
    require_write(caller, CHANGES)
    years = repo.survey_years(conn)
    for y in (from_year, to_year):
        if y not in years:
            raise InvalidParameter(f"survey year {y} is not loaded; loaded: {', '.join(map(str, years))}")
    if to_year <= from_year:
        raise InvalidParameter("to_year must be after from_year")
    count = repo.compute_change_patches(conn, from_year, to_year, min_change_area_m2)
    audit(conn, caller, CHANGES.id, None, "import", None, None,
          {"from_year": from_year, "to_year": to_year, "patches": count})
    return {"from_year": from_year, "to_year": to_year, "change_patches": count,
            "changes": repo.change_summary(conn, from_year, to_year)}
