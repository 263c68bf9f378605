"""土地利用详查 and 变更调查: the rules a survey year's patches must follow, and their legal area.

Each survey year's patches stay in the table; every year stays queryable. A year is *complete* (it
covers the city) or *partial* (a few patches: a local update, a pilot): declared when it is loaded, or
derived from how much of the reference extent — the largest complete year loaded — its patches
cover. Statistics, balance tables and pre-reviews default to the latest complete year and state the
year they used and how much of their input it does not cover. A patch's legal area is its ellipsoidal area (third national land
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
# a year whose patches cover at least this share of the reference extent is complete (a survey of the
# whole city leaves out no more than its rounding and a few disputed slivers)
COMPLETE_COVERAGE = 0.99
COMPLETENESS = ("complete", "partial")


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


def check_completeness(completeness: str | None) -> None:
    """A declared completeness is one the register knows (None: derive it from coverage)."""
    if completeness is not None and completeness not in COMPLETENESS:
        raise InvalidParameter("completeness is 'complete' (the year covers the city) or 'partial' (some patches "
                               "only); leave it out to derive it from the year's coverage")


def year_status(covered_m2: float, reference_m2: float | None, declared: str | None) -> dict[str, Any]:
    """Completeness of a survey year covering ``covered_m2`` (plane) against the reference extent (the
    largest complete year's, None when there is none: the first year defines the city)."""
    coverage = None if not reference_m2 else covered_m2 / reference_m2
    derived = "complete" if coverage is None or coverage >= COMPLETE_COVERAGE else "partial"
    return {"completeness": declared or derived, "declared": declared is not None, "coverage": coverage}


def coverage_statement(year: int, completeness: str, input_m2: float, covered_m2: float,
                       what: str) -> dict[str, Any]:
    """What a statistic or report says about its survey year: which year, complete or not, and how much
    of its input (``what``: the red line, the district, the city …) the year does not cover."""
    uncovered = max(input_m2 - covered_m2, 0.0)
    share = uncovered / input_m2 if input_m2 > 0 else 0.0
    note = (f"{year}年调查（{'完整' if completeness == 'complete' else '部分'}）覆盖{what}全部"
            if uncovered <= max(1.0, 1e-9 * input_m2) else
            f"{year}年调查（{'完整' if completeness == 'complete' else '部分'}）未覆盖{what}的 {uncovered:,.2f} m² "
            f"（{100 * share:.1f}%）: those figures are missing from the land-use rows")
    return {"year": year, "completeness": completeness, "input_area_m2": input_m2, "covered_area_m2": covered_m2,
            "uncovered_area_m2": uncovered, "uncovered_share": share, "note": note}
